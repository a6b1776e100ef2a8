"""Provider emulators on 127.0.0.1 for tests, benchmarks and the demo.

    from sandbox import Sandbox

    with Sandbox(providers=("slack",), seed=7, time_scale=60) as sb:
        ws = sb.slack.add_workspace(name="Acme", messages_per_channel=500)
        client = WebClient(token=ws.credentials["access_token"],
                           base_url=sb.env["AOS_SLACK_API_URL"])

Never imported by production code paths.
"""

from __future__ import annotations

from sandbox.core import Sandbox, known_providers
from sandbox.faults import FAULT_KINDS, PROVIDER_FAULT_KINDS, Fault, FaultInjector
from sandbox.requestlog import REDACTED, LogEntry, RequestLog

__all__ = [
    "FAULT_KINDS",
    "PROVIDER_FAULT_KINDS",
    "REDACTED",
    "Fault",
    "FaultInjector",
    "LogEntry",
    "RequestLog",
    "Sandbox",
    "known_providers",
]
