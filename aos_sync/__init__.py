"""AudienceOS Sync for analysts: ``aos_sync.analytics`` (pandas) and ``aos_sync.export``."""
