"""Benchmark scenarios, run by ``omnirt bench ...``; each measures against a baseline run side by side."""
