"""Running the flows: ``aos-sync serve`` (one process) and work-pool templates (see docs/)."""
