"""Aftercare: IoT-driven aftermarket service CRM.

This package holds what every part shares: configuration, the command line, and the
telemetry store's schema. The data flow lives in ``simulators/``, ``ingest/``, ``anomaly/``,
``service_crm/`` and ``web/``.
"""

__version__ = "0.1.0"
