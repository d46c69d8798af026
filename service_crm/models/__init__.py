"""CRM models, one module per entity (filled in by the service CRM work)."""
