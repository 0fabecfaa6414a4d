"""Job event streams: one ordered, resumable log per job (Redis Streams in a fleet, memory when embedded), and the
per-process relay that fans new events out to the HTTP and WebSocket clients that follow them."""
