"""The ``aos-sync`` command line."""
