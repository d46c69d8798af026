"""Read-side queries of the service CRM."""
