"""A toy provider, added to the project the way a real one is: one connector package, one table
and its migration, one emulator, one registry entry (see tests/test_toy_provider.py)."""
