"""``aos-sync sandbox serve``, typed the way the README shows it, for every provider."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from connectors import registry

AOS_SYNC = Path(sys.executable).parent / "aos-sync"


@pytest.mark.parametrize("provider", registry.names())
def test_sandbox_serve_as_typed(provider: str) -> None:
    proc = subprocess.Popen(
        [str(AOS_SYNC), "sandbox", "serve", "--providers", provider, "--size", "tiny"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        exports: dict[str, str] = {}
        for line in proc.stdout:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
            if line.startswith("# admin:"):
                break
        else:
            pytest.fail(f"no settings printed; stderr: {proc.stderr.read() if proc.stderr else ''}")
        urls = {k: v for k, v in exports.items() if k.endswith("_URL") and "TOKEN" not in k}
        assert urls, exports
        for url in urls.values():
            parts = urlsplit(url)
            health = httpx.get(f"{parts.scheme}://{parts.netloc}/_sandbox/health", timeout=10)
            assert health.status_code == 200, (url, health.text)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
