"""The shared Google Ads operations quota in PostgreSQL (``db.quota.ProjectQuota``): reserved
before use, per project over a rolling 24 hours, shared fairly between integrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from db import tenancy
from db.quota import ProjectQuota


@pytest.fixture
def integrations(fresh_engine: sa.Engine) -> Iterator[list[tuple[int, int]]]:
    """(agency, integration) of five agencies' Google Ads integrations, one OAuth client."""
    with fresh_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM provider_quota_use"))
        out = []
        for n in range(5):
            agency = tenancy.create_agency(conn, f"quota-agency-{n}")
            out.append((agency, tenancy.add_integration(conn, agency, "google_ads", f"ga-{n}")))
    yield out


def quota(
    engine: sa.Engine, who: tuple[int, int], *, limit: int = 10, floor: int = 1
) -> ProjectQuota:
    return ProjectQuota(
        engine,
        provider="google_ads",
        project="client-1.apps.googleusercontent.com",
        agency_id=who[0],
        integration_id=who[1],
        daily_limit=limit,
        min_share=floor,
    )


def spend(q: ProjectQuota, most: int = 100) -> int:
    taken = 0
    while taken < most and q.reserve():
        taken += 1
    return taken


def test_shares_leave_room_for_newcomers_and_the_project_limit_holds(
    fresh_engine: sa.Engine, integrations: list[tuple[int, int]]
) -> None:
    a, b, c, d, e = (quota(fresh_engine, who) for who in integrations)
    assert spend(a) == 5  # alone: half, the other half kept for whoever comes next
    assert a.status() == {"operations_used": 5, "operations_left": 0}
    assert spend(b) == 3  # two known: a third each
    assert spend(c) == 1  # its floor; the project's last one is kept for a newcomer
    assert spend(d) == 1  # the newcomer's floor
    assert spend(e) == 0  # the project's 10 are spent: even the floor waits
    assert spend(a) == 0  # and nobody gets more
    with fresh_engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT sum(operations) FROM provider_quota_use")).scalar() == 10
        )


def test_the_window_rolls_and_the_floor_applies(
    fresh_engine: sa.Engine, integrations: list[tuple[int, int]]
) -> None:
    a = quota(fresh_engine, integrations[0], limit=100, floor=60)
    assert spend(a) == 60  # the floor is above half
    with fresh_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE provider_quota_use SET used_at = used_at - interval '24 hours 1 s'")
        )
    assert spend(quota(fresh_engine, integrations[0], limit=100, floor=60)) == 60


def test_concurrent_reservations_never_overspend(
    fresh_engine: sa.Engine, integrations: list[tuple[int, int]]
) -> None:
    taken = [0] * len(integrations)
    barrier = threading.Barrier(len(integrations))

    def run(slot: int) -> None:
        q = quota(fresh_engine, integrations[slot], limit=40, floor=8)
        barrier.wait()
        taken[slot] = spend(q)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(integrations))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(taken) == 40  # all of it, and never more, whatever the interleaving
    assert max(taken) <= 20
