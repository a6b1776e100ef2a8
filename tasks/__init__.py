"""Prefect tasks: thin verbs that join connectors and the database (DESIGN §2)."""
