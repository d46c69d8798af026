"""The Django project: service desk, field engineer, customer portal and REST API."""
