"""Telemetry: Prometheus metrics for the API and the fleet."""
