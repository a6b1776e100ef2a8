"""Provider holds in the control database (``db.holds.ProviderHolds``): what one worker was
told, every other worker reads; a hold only grows; it ends at the database's time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from connectors.kit.holds import PROJECT, LocalHolds
from db import tenancy
from db.holds import ProviderHolds

THROTTLED = "Meta throttled campaigns (HTTP 400, code 80004/2446079)"


@pytest.fixture
def integrations(fresh_engine: sa.Engine) -> Iterator[list[tuple[int, int]]]:
    """(agency, integration) of three agencies' Meta integrations."""
    with fresh_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM provider_hold"))
        out = []
        for n in range(3):
            agency = tenancy.create_agency(conn, f"hold-agency-{n}")
            out.append((agency, tenancy.add_integration(conn, agency, "meta_ads", f"meta-{n}")))
    yield out


def holds(engine: sa.Engine, who: tuple[int, int], **kwargs: object) -> ProviderHolds:
    return ProviderHolds(engine, "meta_ads", who[0], who[1], **kwargs)  # type: ignore[arg-type]


def rows(engine: sa.Engine) -> set[tuple[str, int, str]]:
    with engine.connect() as conn:
        return {
            (r.scope, r.integration_id, r.reason)
            for r in conn.execute(sa.text("SELECT * FROM provider_hold"))
        }


def test_a_hold_is_seen_by_every_integration_and_only_grows(
    fresh_engine: sa.Engine, integrations: list[tuple[int, int]]
) -> None:
    a, b, c = (holds(fresh_engine, who) for who in integrations)
    told = a.put("act_1@42", 600, THROTTLED)
    assert 599 < told.left <= 600 and told.reason == THROTTLED

    seen = b.get("act_1@42")
    assert seen is not None and seen.until == told.until and seen.reason == THROTTLED
    assert 0 < told.left - seen.left < 5  # measured against the database's clock
    assert b.get("act_2@42") is None and c.get("act_1@7") is None  # another account, app

    # A shorter pause told later changes nothing; a longer one moves it on.
    assert a.put("act_1@42", 60, "shorter").until == told.until
    longer = c.put("act_1@42", 1200, "longer")
    assert longer.until > told.until and longer.reason == "longer"
    again = a.get("act_1@42")
    assert again is not None and again.until == longer.until and again.reason == "longer"
    # Who was told or met it: every one of them, for `aos-sync status`.
    ids = [who[1] for who in integrations]
    assert {(s, i) for s, i, _ in rows(fresh_engine)} == {("act_1@42", i) for i in ids}


def test_a_hold_ends_at_its_time_and_is_pruned(
    fresh_engine: sa.Engine, integrations: list[tuple[int, int]]
) -> None:
    a, b, _ = (holds(fresh_engine, who) for who in integrations)
    a.put("act_1", 0.5, THROTTLED)
    assert b.get("act_1") is not None
    time.sleep(0.6)
    assert a.get("act_1") is None and b.get("act_1") is None
    a.put("act_2", 60, THROTTLED)  # the next write deletes what has ended
    assert {s for s, _, _ in rows(fresh_engine)} == {"act_2"}
    assert a.put("act_3", 0, THROTTLED).left == 0  # no time at all holds nothing
    assert a.get("act_3") is None


def test_the_project_is_the_oauth_clients_and_reasons_are_cut(
    fresh_engine: sa.Engine, integrations: list[tuple[int, int]]
) -> None:
    one, two, three = integrations
    first = holds(fresh_engine, one, names={PROJECT: "client-1.apps.googleusercontent.com"})
    same = holds(fresh_engine, two, names={PROJECT: "client-1.apps.googleusercontent.com"})
    other = holds(fresh_engine, three, names={PROJECT: "client-2.apps.googleusercontent.com"})
    first.put(PROJECT, 3600, "quota " * 200)
    seen = same.get(PROJECT)
    assert seen is not None and len(seen.reason) == 500
    assert other.get(PROJECT) is None
    assert {s for s, _, _ in rows(fresh_engine)} == {"client-1.apps.googleusercontent.com"}


def test_concurrent_writers_keep_the_latest(
    fresh_engine: sa.Engine, integrations: list[tuple[int, int]]
) -> None:
    who = integrations[0]
    barrier = threading.Barrier(4)

    def put(seconds: float) -> None:
        barrier.wait()
        holds(fresh_engine, who).put("act_9", seconds, f"{seconds:.0f} s")

    threads = [threading.Thread(target=put, args=(s,)) for s in (100, 400, 300, 200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    held = holds(fresh_engine, integrations[1]).get("act_9")
    assert held is not None and held.reason == "400 s" and 390 < held.left <= 400


def test_local_holds_follow_the_readers_clock() -> None:
    now = [100.0]
    local = LocalHolds(clock=lambda: now[0])
    local.put("act_1", 30, THROTTLED)
    local.put("act_1", 10, "shorter")
    held = local.get("act_1")
    assert held is not None and held.left == 30 and held.reason == THROTTLED
    now[0] += 30
    assert local.get("act_1") is None
