"""Manual runs share one local Prefect server, started on demand and stopped with the database,
instead of a temporary server per command (and runs the UI never sees)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from deployments.local_server import LocalPrefect

AOS_SYNC = Path(sys.executable).parent / "aos-sync"

pytestmark = pytest.mark.slow


def test_commands_reuse_one_local_server_until_db_stop(
    tmp_path: Path, fresh_engine: sa.Engine
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AOS_"))}
    env.update(
        AOS_HOME=str(tmp_path / "aos"),
        AOS_DATABASE_URL=fresh_engine.url.render_as_string(hide_password=False),
        PREFECT_HOME=str(tmp_path / "no-profile"),  # no user profile pointing elsewhere
    )

    def aos(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AOS_SYNC), *args], env=env, capture_output=True, text=True, timeout=300
        )

    from db import tenancy

    with fresh_engine.begin() as conn:  # a member without a grant: refused by the matrix
        agency = tenancy.create_agency(conn, "Acme")
        tenancy.add_user(conn, agency, "nobody@example.test", "member")
        iid = tenancy.add_integration(conn, agency, "slack", "chat")
    try:
        state = tmp_path / "aos" / "prefect" / "server.json"
        runs = []
        for _ in range(2):
            done = aos("sync", "slack", "--integration", str(iid), "--as", "nobody@example.test")
            last = done.stderr.strip().splitlines()[-1]
            assert done.returncode == 1 and last.startswith("error: permission denied"), done.stderr
            assert "Traceback" not in done.stderr
            runs.append(json.loads(state.read_text()))
        assert runs[0] == runs[1]  # the second command found the first one's server
        api = f"http://127.0.0.1:{runs[0]['port']}/api"
        flow_runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
        assert sorted(r["name"] for r in flow_runs) == [f"slack-integration-{iid}"] * 2
        assert {r["state"]["name"] for r in flow_runs} == {"Refused"}

        stopped = json.loads(aos("--json", "db", "stop").stdout)
        assert stopped["prefect_stopped"] is True and not state.exists()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{api}/health", timeout=2)
    finally:  # a failed assertion must not leave the server running
        LocalPrefect(tmp_path / "aos" / "prefect").stop()
