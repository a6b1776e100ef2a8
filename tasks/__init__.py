"""Prefect tasks: thin verbs that join connectors and the database."""

from __future__ import annotations

from connectors import logsafe

# Tasks read tokens: whoever imports them (a worker, a benchmark) gets redacted log records.
logsafe.install()
