"""Provider clients. No Prefect and no database imports here (see DESIGN §2)."""
