"""Ingest: MQTT telemetry into the store, exactly once, nothing lost."""
