"""Run grants are single use, so one read back from Prefect is worthless.

The finding: a valid grant could be presented again and again until it expired, and anyone
with Prefect API access can read it from the flow run's stored parameters. The attack here is
the real one: an owner's grant runs a sync (``sync_slack`` under the session's Prefect server,
the Slack emulator over real sockets, real PostgreSQL); the attacker replays the same token,
then reads it back from the first flow run's parameters through the Prefect client and
presents that copy, with and without naming the owner. Both replays must be refused, audited,
and reach nothing: no request to the provider, no ledger row, no rows loaded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from db.grants import (
    ENV_KEY,
    PRUNE_GRACE,
    InvalidRunGrant,
    RunGrant,
    consume_run_grant,
    mint_run_grant,
    read_run_grant,
)
from db.rbac import Action, PermissionDenied, Principal
from db.schema import audit_event, run_grant_use
from flows import sync_slack
from tests.flows.conftest import World, seeded_world

START = datetime(2026, 10, 1, tzinfo=UTC)
KEY = bytes(range(100, 132))


@pytest.fixture
def world(
    fresh_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[World]:
    with seeded_world(
        World, fresh_engine, monkeypatch, providers=("slack",), time_scale=60, seed=31
    ) as w:
        monkeypatch.setenv(ENV_KEY, base64.b64encode(KEY).decode())
        yield w


def _scalar(engine: sa.Engine, query: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def _refusals(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(audit_event)
                .where(audit_event.c.action == "authorize.refused")
                .order_by(audit_event.c.id)
            )
        )


def test_a_grant_runs_once_and_its_stored_copy_is_worthless(world: World) -> None:
    iid = world.add_slack(
        "replay",
        client="globex",
        users=3,
        channels=2,
        messages_per_channel=20,
        start=START,
        span_days=5,
        config={"auto_join": True},
    )
    owner = world.users["owner"]
    grant = mint_run_grant(KEY, owner, iid, "sync")

    first = sync_slack(integration_id=iid, requested_by=owner, run_grant=grant)
    assert first["status"] == "succeeded"
    loaded = _scalar(world.data, "SELECT count(*) FROM slack_messages")
    assert loaded > 0
    with world.engine.connect() as conn:
        run = conn.execute(
            sa.text("SELECT principal, principal_verified, flow_run_id FROM sync_run")
        ).one()
        [use] = conn.execute(sa.select(run_grant_use)).all()
    assert (run.principal, run.principal_verified) == (owner, True)
    assert (use.principal, use.integration_id, use.action) == (owner, iid, "sync")

    # The attacker reads the grant back from the first run's stored parameters.
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(run.flow_run_id).parameters
    assert stored["run_grant"] == grant  # Prefect does keep it: the exposure is real

    world.sandbox.log.clear()
    replays = [
        {"run_grant": grant, "requested_by": owner},  # the same token again
        {"run_grant": stored["run_grant"], "requested_by": stored["requested_by"]},  # from the API
    ]
    for params in replays:
        with pytest.raises(InvalidRunGrant, match="already used") as caught:
            sync_slack(integration_id=iid, **params)
        assert isinstance(caught.value, PermissionDenied)
        assert caught.value.principal == Principal.user(owner, verified=True)

    assert len(world.sandbox.log) == 0, "a replay reached the provider"
    assert _scalar(world.engine, "SELECT count(*) FROM sync_run") == 1
    assert _scalar(world.data, "SELECT count(*) FROM slack_messages") == loaded
    rows = _refusals(world.engine)
    assert [(r.outcome, r.principal, r.integration_id, r.agency_id) for r in rows] == [
        ("denied", owner, iid, world.agency_id)
    ] * len(replays)
    assert all("already used" in r.detail["reason"] for r in rows)
    assert all(r.detail["grant_subject"] == owner for r in rows)


def _stored_grants() -> dict[str, dict[str, Any]]:
    """Every flow run's parameters that carry a run grant, as anyone with API access reads
    them: token -> parameters."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
    return {r.parameters["run_grant"]: r.parameters for r in runs if r.parameters.get("run_grant")}


@pytest.mark.parametrize("misdirected", ["integration", "action", "principal"])
def test_a_refused_grant_is_spent_so_its_stored_copy_is_worthless(
    world: World, misdirected: str
) -> None:
    """The finding: a grant refused for the wrong integration, action or principal was not
    spent, yet the refused flow run stored it; read back from Prefect's API it ran as a verified
    run of its owner. Now every presentation whose signature holds spends it."""
    target = world.add_slack(
        "target",
        client="globex",
        users=3,
        channels=2,
        messages_per_channel=10,
        start=START,
        span_days=5,
        config={"auto_join": True},
    )
    elsewhere = world.add_slack(
        "elsewhere", client="globex", users=2, channels=1, messages_per_channel=5, start=START
    )
    owner, admin = world.users["owner"], world.users["admin"]
    # What the owner meant: a backfill-class rerun (full refresh) of ``target``.
    grant = mint_run_grant(KEY, owner, target, "backfill")
    wrong: dict[str, Any] = {
        "integration": {"integration_id": elsewhere, "requested_by": owner, "full_refresh": True},
        "action": {"integration_id": target, "requested_by": owner},  # a plain sync
        "principal": {"integration_id": target, "requested_by": admin, "full_refresh": True},
    }[misdirected]
    with pytest.raises(InvalidRunGrant, match=f"wrong {misdirected}|does not match"):
        sync_slack(run_grant=grant, **wrong)
    with world.engine.connect() as conn:
        [use] = conn.execute(sa.select(run_grant_use)).all()
    assert (use.principal, use.integration_id, use.action) == (owner, target, "backfill")

    stored = _stored_grants()[grant]  # the refused run kept it: the exposure is real
    world.sandbox.log.clear()
    with pytest.raises(InvalidRunGrant, match="already used") as caught:
        sync_slack(
            integration_id=target,
            requested_by=stored["requested_by"] if misdirected != "principal" else owner,
            full_refresh=True,
            run_grant=stored["run_grant"],
        )
    assert caught.value.principal == Principal.user(owner, verified=True)
    assert len(world.sandbox.log) == 0, "the replay reached the provider"
    assert _scalar(world.engine, "SELECT count(*) FROM sync_run") == 0
    assert _scalar(world.data, "SELECT count(*) FROM slack_messages") == 0
    reasons = [r.detail["reason"] for r in _refusals(world.engine)]
    assert len(reasons) == 2 and "already used" in reasons[1]

    # The owner's way on is a fresh grant, which runs as theirs.
    fresh = mint_run_grant(KEY, owner, target, "backfill")
    done = sync_slack(integration_id=target, requested_by=owner, full_refresh=True, run_grant=fresh)
    assert done["status"] == "succeeded"


def test_a_grant_with_a_bad_signature_spends_nothing(world: World) -> None:
    """Only a verified signature spends: a forged token cannot burn someone's nonce."""
    iid = world.add_slack("forged", client="globex", users=2, channels=1, start=START)
    grant = mint_run_grant(KEY, world.users["owner"], iid, "sync")
    body, _sig = grant.split(".")
    forged = body + "." + mint_run_grant(bytes(32), world.users["owner"], iid, "sync").split(".")[1]
    with pytest.raises(InvalidRunGrant, match="bad signature"):
        sync_slack(integration_id=iid, requested_by=world.users["owner"], run_grant=forged)
    assert _scalar(world.engine, "SELECT count(*) FROM run_grant_use") == 0
    ok = sync_slack(integration_id=iid, requested_by=world.users["owner"], run_grant=grant)
    assert ok["status"] == "succeeded"


def test_a_fresh_grant_still_works_after_a_replay_was_refused(world: World) -> None:
    """Single use is per grant, not per person: minting again is the way to run again."""
    iid = world.add_slack(
        "again",
        client="globex",
        users=3,
        channels=2,
        messages_per_channel=10,
        start=START,
        span_days=5,
        config={"auto_join": True},
    )
    admin = world.users["admin"]
    first = mint_run_grant(KEY, admin, iid, "sync")
    second = mint_run_grant(KEY, admin, iid, "sync")
    assert first != second  # same second, same claims: the nonce tells them apart
    assert (
        sync_slack(integration_id=iid, requested_by=admin, run_grant=first)["status"] == "succeeded"
    )
    with pytest.raises(InvalidRunGrant, match="already used"):
        sync_slack(integration_id=iid, requested_by=admin, run_grant=first)
    assert (
        sync_slack(integration_id=iid, requested_by=admin, run_grant=second)["status"]
        == "succeeded"
    )
    assert _scalar(world.engine, "SELECT count(*) FROM sync_run") == 2


def test_a_version_1_grant_verifies_once(world: World) -> None:
    """Tokens minted before nonces (v1) are accepted during a rollout, and are single use
    too: the nonce is derived from their signed payload."""
    iid = world.add_slack(
        "v1",
        client="globex",
        users=3,
        channels=2,
        messages_per_channel=10,
        start=START,
        span_days=5,
        config={"auto_join": True},
    )
    now = int(datetime.now(UTC).timestamp())
    payload = {"v": 1, "sub": world.users["owner"], "int": iid, "act": "sync"}
    body = base64.urlsafe_b64encode(
        json.dumps({**payload, "iat": now, "exp": now + 600}).encode()
    ).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(KEY, body, hashlib.sha256).digest()).rstrip(b"=")
    token = f"{body.decode()}.{sig.decode()}"
    assert (
        sync_slack(integration_id=iid, requested_by=world.users["owner"], run_grant=token)["status"]
        == "succeeded"
    )
    with pytest.raises(InvalidRunGrant, match="already used"):
        sync_slack(integration_id=iid, requested_by=world.users["owner"], run_grant=token)
    assert _scalar(world.engine, "SELECT count(*) FROM sync_run") == 1


# -- consume_run_grant against PostgreSQL ------------------------------------------------------


def _grant(nonce: str, expires: datetime) -> RunGrant:
    return RunGrant(
        principal=Principal.user("bob@acme.test", verified=True),
        integration_id=1,
        action=Action.SYNC,
        nonce=nonce,
        issued_at=expires - timedelta(minutes=15),
        expires_at=expires,
        version=2,
    )


def test_racing_runs_with_one_grant_have_one_winner(fresh_engine: sa.Engine) -> None:
    """Eight threads present one grant at the same moment: exactly one gets through."""
    token = mint_run_grant(KEY, "bob@acme.test", 1, "sync")
    grant = read_run_grant(KEY, token, integration_id=1, action="sync")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def use() -> None:
        barrier.wait()
        try:
            consume_run_grant(fresh_engine, grant)
            result = "used"
        except InvalidRunGrant as exc:
            result = exc.reason
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(outcomes) == 8 and outcomes.count("used") == 1, outcomes
    assert all(o.startswith("already used") for o in outcomes if o != "used")


def test_expired_uses_are_pruned_on_the_way(fresh_engine: sa.Engine) -> None:
    now = datetime.now(UTC)
    long_gone = now - PRUNE_GRACE - timedelta(minutes=5)
    just_expired = now - timedelta(minutes=5)  # within the grace: kept, a replay is refused
    for nonce, expires in (("a" * 22, long_gone), ("b" * 22, just_expired)):
        consume_run_grant(fresh_engine, _grant(nonce, expires))
    consume_run_grant(fresh_engine, _grant("c" * 22, now + timedelta(minutes=10)))
    with fresh_engine.connect() as conn:
        left = set(conn.execute(sa.select(run_grant_use.c.nonce)).scalars())
    assert left == {"b" * 22, "c" * 22}
    with pytest.raises(InvalidRunGrant, match="already used"):
        consume_run_grant(fresh_engine, _grant("b" * 22, just_expired))
