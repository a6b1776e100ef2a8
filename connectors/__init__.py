"""Provider clients: the registry, the shared kit, one package per provider. No Prefect and no
database imports here (docs/connectors.md)."""
