"""The service CRM: accounts, assets, contracts, alerts, tickets, work orders and offers."""
