"""Requests on a reused keep-alive connection are answered at once by every HTTP emulator.

Before TCP_NODELAY on the accepted sockets, each answer's headers and body left in two sends and
the body waited for the client's delayed ACK: about 44 ms per request on a reused connection
against about 1 ms on a fresh one, which inflated every benchmark that reuses connections."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from connectors import registry
from sandbox import Sandbox

BURST = 50


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(providers=registry.names(), seed=3) as sandbox:
        yield sandbox


@pytest.mark.parametrize("provider", registry.names())
def test_a_burst_on_one_connection_is_not_delayed(sb: Sandbox, provider: str) -> None:
    """50 requests on one connection (the HTTP side of every emulator: Google Ads' is its
    OAuth token endpoint): the median is far under the ~40 ms of a delayed ACK."""
    with httpx.Client(base_url=sb.base_url(provider), timeout=10) as client:
        client.get("/_sandbox/health").raise_for_status()  # open the connection
        seconds: list[float] = []
        for _ in range(BURST):
            start = time.perf_counter()
            answer = client.get("/_sandbox/health")
            seconds.append(time.perf_counter() - start)
            assert answer.status_code == 200 and answer.headers.get("connection") != "close"
    median_ms = statistics.median(seconds) * 1000
    assert median_ms < 20, f"{provider}: median {median_ms:.1f} ms per request on one connection"
