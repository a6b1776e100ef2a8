"""The suite's plugins, loaded however pytest is started (``python3 run.py test``, ``pytest``)."""

pytest_plugins = ["tests.plugins.leftovers"]
