"""pytest plugins of the suite, loaded by the root conftest.py."""
