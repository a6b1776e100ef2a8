"""db.loader and db.state against a real PostgreSQL: an agency's own database (``engine`` here
is one per module, ``fresh_engine`` one per test).

Each test makes its own integration (with its partitions), under an agency id of its own, so
they share the database without sharing rows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import db.loader
from connectors.common import Page, Reconcile
from db import agencydb, tenancy
from db.load_checks import decode_record, encode_record
from db.loader import LoadError, TableLoader, Tenant, soft_delete
from db.schema import agency_integration, slack_messages, slack_users, sync_reject
from db.state import clear_state, load_state, save_state

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
_names = itertools.count()


def _agency_database(control: sa.Engine) -> sa.Engine:
    with control.begin() as conn:
        agency_id = tenancy.create_agency(conn, "Loader")
    return agencydb.engine_for(control, agency_id)


@pytest.fixture(scope="module")
def engine(engine: sa.Engine) -> sa.Engine:
    return _agency_database(engine)


@pytest.fixture
def fresh_engine(fresh_engine: sa.Engine) -> sa.Engine:
    return _agency_database(fresh_engine)


@pytest.fixture
def tenant(engine: sa.Engine) -> Tenant:
    return make_tenant(engine)


def make_tenant(engine: sa.Engine, **kw: Any) -> Tenant:
    """An integration in the agency database's copy (and its Slack partitions), under an
    agency id of its own."""
    n = next(_names)
    agency_id, integration_id = 1000 + n, 5000 + n
    with engine.begin() as conn:
        conn.execute(
            sa.insert(agency_integration).values(
                agency_id=agency_id, id=integration_id, provider="slack", name=f"slack {n}"
            )
        )
        agencydb.ensure_partitions(conn, integration_id, ["slack_messages", "slack_users"])
    return Tenant(agency_id, integration_id, **kw)


def msg(i: int, channel: str = "C1", text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "channel_id": channel,
        "ts": f"{1704067200 + i}.000100",
        "posted_at": T0 + dt.timedelta(seconds=i),
        "user_id": "U1",
        "bot_id": None,
        "subtype": None,
        "text": text,
        "thread_ts": None,
        "is_reply": False,
        "reply_count": 0,
        "latest_reply": None,
        "edited_ts": None,
        "reactions": [{"name": "eyes", "count": 1}],
        "files": None,
        **extra,
    }


def rows(engine: sa.Engine, tenant: Tenant, *cols: str) -> list[tuple[Any, ...]]:
    t = slack_messages
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(*(t.c[c] if c in t.c else sa.literal_column(f"{c}::text") for c in cols))
                .where(t.c.integration_id == tenant.integration_id)
                .order_by(t.c.channel_id, t.c.ts)
            )
        ]


def state(engine: sa.Engine, tenant: Tenant, stream: str = "messages") -> dict[str, Any]:
    with engine.connect() as conn:
        return load_state(conn, tenant.integration_id, stream)


def loader(engine: sa.Engine, tenant: Tenant, **kw: Any) -> TableLoader:
    return TableLoader(engine, slack_messages, tenant, **kw)


# -- state --------------------------------------------------------------------------------------
def test_state_roundtrip_and_clear(engine: sa.Engine, tenant: Tenant) -> None:
    iid = tenant.integration_id
    with engine.begin() as conn:
        save_state(conn, iid, "messages", "C1", {"ts": "1"})
        save_state(conn, iid, "messages", "C1", {"ts": "2"})  # upsert
        save_state(conn, iid, "messages", "C2", {"ts": "3"})
        save_state(conn, iid, "users", "", {"cursor": "x"})
    assert state(engine, tenant) == {"C1": {"ts": "2"}, "C2": {"ts": "3"}}
    with engine.begin() as conn:
        assert clear_state(conn, iid, "messages") == 2
    assert state(engine, tenant) == {} and state(engine, tenant, "users") == {"": {"cursor": "x"}}
    with engine.begin() as conn:
        assert clear_state(conn, iid) == 1


# -- loading ------------------------------------------------------------------------------------
def test_loads_rows_and_saves_cursor_per_partition(engine: sa.Engine, tenant: Tenant) -> None:
    pages = [
        Page("messages", [msg(1), msg(2)], partition="C1", state={"ts": "2"}),
        Page("messages", [msg(3, "C2")], partition="C2", state={"ts": "3"}),
    ]
    counts = loader(engine, tenant).load(pages)
    assert (counts.inserted, counts.updated, counts.unchanged, counts.batches) == (3, 0, 0, 1)
    assert rows(engine, tenant, "channel_id", "text", "reactions") == [
        ("C1", "hello", [{"name": "eyes", "count": 1}]),
        ("C1", "hello", [{"name": "eyes", "count": 1}]),
        ("C2", "hello", [{"name": "eyes", "count": 1}]),
    ]
    assert state(engine, tenant) == {"C1": {"ts": "2"}, "C2": {"ts": "3"}}


def test_tenant_columns_are_overwritten_and_hints_ignored(engine: sa.Engine) -> None:
    tenant = make_tenant(engine, client_id=None)
    other = make_tenant(engine)
    forged = msg(
        1,
        agency_id=other.agency_id,
        integration_id=other.integration_id,
        client_id=424242,
        synced_at=T0,
        deleted_at=T0,
        _channel_hint="C1",
    )
    loader(engine, tenant).load([Page("messages", [forged])])
    (row,) = rows(engine, tenant, "agency_id", "client_id", "synced_at", "deleted_at")
    assert row[0] == tenant.agency_id and row[1] is None and row[3] is None
    assert row[2] > T0 + dt.timedelta(days=365)  # now(), not the record's value
    assert rows(engine, other, "ts") == []


def test_client_attribution(engine: sa.Engine) -> None:
    by_channel = make_tenant(engine, client_map={"C1": 11, "C2": 22}, client_field="channel_id")
    loader(engine, by_channel).load([Page("m", [msg(1, "C1"), msg(2, "C2"), msg(3, "C9")])])
    assert rows(engine, by_channel, "client_id") == [(11,), (22,), (None,)]

    by_domains = make_tenant(engine, client_map={"b.com": 7}, client_field="_domains")
    recs = [msg(1, _domains=["a.com", "b.com"]), msg(2, _domains=["x.org"]), msg(3)]
    loader(engine, by_domains).load([Page("m", recs)])
    assert rows(engine, by_domains, "client_id") == [(7,), (None,), (None,)]

    fixed = make_tenant(engine, client_id=5, client_map={"C1": 11}, client_field="channel_id")
    loader(engine, fixed).load([Page("m", [msg(1, "C1")])])
    assert rows(engine, fixed, "client_id") == [(5,)]


def test_reload_rewrites_nothing(engine: sa.Engine, tenant: Tenant) -> None:
    recs = [msg(i, f"C{i % 3}") for i in range(300)]
    loader(engine, tenant).load([Page("m", recs)])
    before = rows(engine, tenant, "ts", "xmin", "synced_at")
    counts = loader(engine, tenant, max_rows=100).load([Page("m", recs)])
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 300)
    assert rows(engine, tenant, "ts", "xmin", "synced_at") == before  # no new row versions
    # Not even locked: ON CONFLICT DO UPDATE locks every conflicting row (setting xmax) unless
    # the unchanged rows are filtered out before the upsert.
    with engine.connect() as conn:
        xmax = conn.execute(
            sa.text("SELECT count(*) FROM slack_messages WHERE integration_id = :i AND xmax <> 0"),
            {"i": tenant.integration_id},
        ).scalar_one()
    assert xmax == 0


def test_changes_are_counted_and_only_changed_rows_rewritten(
    engine: sa.Engine, tenant: Tenant
) -> None:
    loader(engine, tenant).load([Page("m", [msg(i) for i in range(10)])])
    before = dict((ts, (x, s)) for ts, x, s in rows(engine, tenant, "ts", "xmin", "synced_at"))
    changed = [msg(i, text="edited" if i < 3 else "hello") for i in range(12)]
    counts = loader(engine, tenant).load([Page("m", changed)])
    assert (counts.inserted, counts.updated, counts.unchanged) == (2, 3, 7)
    after = dict((ts, (x, s)) for ts, x, s in rows(engine, tenant, "ts", "xmin", "synced_at"))
    moved = {ts for ts in before if after[ts] != before[ts]}
    assert moved == {msg(i)["ts"] for i in range(3)}
    assert [t for (t,) in rows(engine, tenant, "text")][:3] == ["edited"] * 3


def test_duplicate_keys_in_one_batch_last_wins(engine: sa.Engine, tenant: Tenant) -> None:
    pages = [Page("m", [msg(1, text="first"), msg(2)]), Page("m", [msg(1, text="last")])]
    counts = loader(engine, tenant).load(pages)
    assert (counts.inserted, counts.batches) == (2, 1)
    assert rows(engine, tenant, "text") == [("last",), ("hello",)]
    counts = loader(engine, tenant).load([Page("m", [msg(1, text="a"), msg(1, text="last")])])
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 1)


def test_soft_delete_by_keys_and_undelete_on_upsert(engine: sa.Engine, tenant: Tenant) -> None:
    key = ("C1", msg(1)["ts"])
    loader(engine, tenant).load([Page("m", [msg(1), msg(2)])])
    counts = loader(engine, tenant).load([Page("m", deleted_keys=[key, ("C1", "nope")])])
    assert counts.deleted == 1
    assert [d is not None for (d,) in rows(engine, tenant, "deleted_at")] == [True, False]
    assert soft_delete(engine, slack_messages, tenant, [key, ("C1", msg(2)["ts"])]) == 1
    counts = loader(engine, tenant).load([Page("m", [msg(1)])])  # seen again upstream
    assert counts.updated == 1
    assert [d is None for (d,) in rows(engine, tenant, "deleted_at")] == [True, False]


def test_reconcile_soft_deletes_missing_rows_in_slice(engine: sa.Engine, tenant: Tenant) -> None:
    other = make_tenant(engine)
    recs = [msg(i, "C1") for i in range(6)] + [msg(i, "C2") for i in range(6)]
    loader(engine, tenant).load([Page("m", recs)])
    loader(engine, other).load([Page("m", recs)])
    alive = [("C1", msg(i)["ts"]) for i in (1, 3)]
    rec = Reconcile(
        where={"channel_id": "C1"},
        alive_keys=alive,
        range_column="posted_at",
        lo=T0 + dt.timedelta(seconds=1),
        hi=T0 + dt.timedelta(seconds=4),
    )
    counts = loader(engine, tenant).load([Page("m", [msg(3, "C1")], reconcile=rec)])
    assert counts.deleted == 2  # C1 ts 2 and 4; 0 and 5 are outside the range
    deleted = [(c, t) for c, t, d in rows(engine, tenant, "channel_id", "ts", "deleted_at") if d]
    assert deleted == [("C1", msg(2)["ts"]), ("C1", msg(4)["ts"])]
    assert all(d is None for (d,) in rows(engine, other, "deleted_at"))


# -- failures -----------------------------------------------------------------------------------
def rejects(engine: sa.Engine, tenant: Tenant) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(sync_reject).where(sync_reject.c.integration_id == tenant.integration_id)
            )
        )


def spoil(change: dict[str, Any], i: int = 1) -> dict[str, Any]:
    bad = msg(i)
    for k, v in change.items():
        if v is ...:
            del bad[k]
        else:
            bad[k] = v
    return bad


POISON = [
    (
        {"posted_at": "2024-01-01"},
        "slack_messages: column 'posted_at' expects timestamptz, got str '2024-01-01' "
        "(key channel_id='C1', ts='1704067201.000100')",
    ),
    (
        {"posted_at": dt.datetime(2024, 1, 1)},  # noqa: DTZ001 - the point of the test
        "column 'posted_at' expects timestamptz, got naive datetime",
    ),
    ({"is_reply": "yes"}, "column 'is_reply' expects boolean, got str 'yes'"),
    ({"reply_count": 2**40}, "column 'reply_count' expects integer, got int 1099511627776"),
    ({"text": 5}, "column 'text' expects text, got int 5"),
    ({"text": "nul \x00 byte"}, "column 'text' expects text, got str"),
    ({"text": "lone \ud800 surrogate"}, "column 'text' expects text, got str"),
    ({"reactions": {"n": float("nan")}}, "column 'reactions' expects jsonb, got dict"),
    ({"reactions": {"t": "\x00"}}, "column 'reactions' expects jsonb, got dict"),
    ({"is_reply": None}, "column 'is_reply' is NOT NULL, got None"),
    ({"ts": None}, "column 'ts' is NOT NULL, got None (key channel_id='C1', ts=None)"),
]


@pytest.mark.parametrize(("change", "message"), POISON)
def test_poison_record_is_set_aside_and_the_rest_commits(
    engine: sa.Engine, tenant: Tenant, change: dict[str, Any], message: str
) -> None:
    bad = spoil(change)
    counts = loader(engine, tenant).load(
        [Page("messages", [msg(0), bad, msg(2)], partition="C1", state={"ts": "x"})]
    )
    assert (counts.inserted, counts.rejected) == (2, 1)
    assert [ts for (ts,) in rows(engine, tenant, "ts")] == [msg(0)["ts"], msg(2)["ts"]]
    assert state(engine, tenant) == {"C1": {"ts": "x"}}
    (reject,) = rejects(engine, tenant)
    assert message in reject.reason
    assert (reject.table_name, reject.stream, reject.attempts) == ("slack_messages", "messages", 1)
    assert reject.record_key == [bad["channel_id"], bad["ts"]]
    stored = decode_record(reject.record)  # with its Python types, for a retry
    assert repr(sorted(stored.items())) == repr(sorted(bad.items()))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ts": ...}, "record has no 'ts' (key column is required; key channel_id='C1', ts=None)"),
        ({"posted_at": ...}, "record has no 'posted_at' (column is required"),
        ({"colour": "red"}, "record field 'colour' is not a column"),
    ],
)
def test_a_record_that_does_not_fit_the_table_fails_the_batch(
    engine: sa.Engine, tenant: Tenant, change: dict[str, Any], message: str
) -> None:
    """A missing or unknown field is a connector/schema mismatch, not poison: loud, not hidden."""
    with pytest.raises(LoadError) as err:
        loader(engine, tenant).load([Page("m", [msg(0), spoil(change)], state={"ts": "x"})])
    assert message in str(err.value)
    assert rows(engine, tenant, "ts") == [] and state(engine, tenant) == {}
    assert rejects(engine, tenant) == []


def test_a_batch_of_nothing_but_poison_is_a_mismatch(engine: sa.Engine, tenant: Tenant) -> None:
    bad = [spoil({"posted_at": "yesterday"}, i) for i in range(3)]
    with pytest.raises(LoadError, match="every record of a batch of 3 was refused"):
        loader(engine, tenant).load([Page("m", bad, state={"ts": "x"})])
    assert rows(engine, tenant, "ts") == [] and state(engine, tenant) == {}
    assert rejects(engine, tenant) == []


def test_poison_does_not_hold_back_the_cursor_of_later_batches(
    engine: sa.Engine, tenant: Tenant
) -> None:
    bad = msg(5, posted_at="yesterday")
    pages = [
        Page("messages", [msg(0), msg(1)], partition="C1", state={"n": 1}),
        Page("messages", [msg(2), msg(3)], partition="C1", state={"n": 2}),
        Page("messages", [msg(4), bad], partition="C1", state={"n": 3}),
        Page("messages", [msg(6)], partition="C1", state={"n": 4}),
    ]
    counts = loader(engine, tenant, max_rows=4).load(pages)
    assert (counts.inserted, counts.rejected) == (6, 1)
    assert [int(ts[8:10]) for (ts,) in rows(engine, tenant, "ts")] == [0, 1, 2, 3, 4, 6]
    assert state(engine, tenant) == {"C1": {"n": 4}}


def test_quarantined_records_are_retried_and_leave_when_they_load(fresh_engine: sa.Engine) -> None:
    tenant = make_tenant(fresh_engine)
    big = msg(1, reply_count=2**40)
    counts = loader(fresh_engine, tenant).load([Page("messages", [msg(0), big])])
    assert counts.rejected == 1

    # Next run, same data upstream: the stored record is tried again first, and fails again.
    counts = loader(fresh_engine, tenant).load([Page("messages", [msg(2)])])
    assert (counts.inserted, counts.rejected) == (1, 1)
    (again,) = rejects(fresh_engine, tenant)
    assert again.attempts == 2 and again.last_seen > again.first_seen

    # The schema learns to hold it (a migration widening the column): the retry loads it.
    with fresh_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE slack_messages ALTER COLUMN reply_count TYPE bigint"))
    counts = loader(fresh_engine, tenant).load([])
    assert (counts.inserted, counts.rejected) == (1, 0)
    assert rejects(fresh_engine, tenant) == []
    assert (big["ts"], 2**40) in rows(fresh_engine, tenant, "ts", "reply_count")


def test_a_newer_good_version_resolves_the_quarantined_one(
    engine: sa.Engine, tenant: Tenant
) -> None:
    loader(engine, tenant).load([Page("messages", [msg(0), spoil({"text": "a\x00b"})])])
    assert len(rejects(engine, tenant)) == 1
    loader(engine, tenant).load([Page("messages", [msg(1, text="a\ufffdb")])])
    assert rejects(engine, tenant) == []
    assert ("a\ufffdb",) in rows(engine, tenant, "text")


def test_crash_after_copy_before_commit_loses_rows_and_cursor_together(
    engine: sa.Engine, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = itertools.count()

    def flaky_save_state(*args: Any) -> None:
        if next(calls) == 1:
            raise RuntimeError("worker killed")
        db.state.save_state(*args)

    monkeypatch.setattr(db.loader, "save_state", flaky_save_state)
    pages = [Page("messages", [msg(i)], partition="C1", state={"n": i}) for i in range(3)]
    with pytest.raises(RuntimeError, match="worker killed"):
        loader(engine, tenant, max_rows=1).load(pages)
    assert rows(engine, tenant, "ts") == [(msg(0)["ts"],)]
    assert state(engine, tenant) == {"C1": {"n": 0}}


def test_batches_are_bounded_and_big_pages_split(
    engine: sa.Engine, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = [Page("messages", [msg(i) for i in range(p * 7, p * 7 + 7)]) for p in range(5)]
    counts = loader(engine, tenant, max_rows=10).load(pages)
    assert (counts.inserted, counts.batches) == (35, 4)

    # A 25-row page with max_rows=10 is three batches; its cursor goes with the last one only.
    seen: list[tuple[int, dict[str, Any]]] = []
    original = db.loader.TableLoader._transaction

    def spy(self: TableLoader, conn: Any, batch: Any, aside: Any) -> Any:
        outcome = original(self, conn, batch, aside)
        seen.append((outcome.inserted, state(engine, tenant)))  # committed before this batch
        return outcome

    monkeypatch.setattr(db.loader.TableLoader, "_transaction", spy)
    big = Page("messages", [msg(i, "C9") for i in range(25)], partition="C9", state={"n": 25})
    counts = loader(engine, tenant, max_rows=10).load([big])
    assert counts.batches == 3 and [n for n, _ in seen] == [10, 10, 5]
    assert all("C9" not in s for _, s in seen)  # not saved by the first two parts
    assert state(engine, tenant)["C9"] == {"n": 25}


def test_max_bytes_bounds_batches(engine: sa.Engine, tenant: Tenant) -> None:
    recs = [msg(i, text="x" * 1000) for i in range(20)]
    counts = loader(engine, tenant, max_bytes=5_000).load([Page("m", recs)])
    assert counts.inserted == 20 and counts.batches >= 4


def test_streams_a_large_generator_in_bounded_memory(engine: sa.Engine, tenant: Tenant) -> None:
    total, page_size = 200_000, 1_000

    def users() -> Iterator[Page]:
        for p in range(total // page_size):
            base = p * page_size
            yield Page(
                "users",
                [
                    {
                        "user_id": f"U{base + i:07d}",
                        "team_id": "T1",
                        "name": f"user{base + i}",
                        "real_name": "A Person",
                        "display_name": None,
                        "email": None,
                        "is_bot": False,
                        "is_admin": False,
                        "is_deleted": False,
                        "tz": "UTC",
                        "updated_at": T0,
                    }  # fmt: skip
                    for i in range(page_size)
                ],
                state={"page": p},
            )

    one_page = sum(len(repr(r)) for r in next(users()).records)
    tracemalloc.start()
    try:
        counts = TableLoader(engine, slack_users, tenant, max_rows=5_000).load(users())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts.inserted == total and counts.batches == total // 5_000
    # The whole input would be ~200 pages; the loader holds about one batch (5 pages).
    assert peak < 25 * one_page, (peak, one_page)
    with engine.connect() as conn:
        n = conn.execute(
            sa.select(sa.func.count()).where(slack_users.c.integration_id == tenant.integration_id)
        ).scalar_one()
    assert n == total


def test_retrying_only_quarantined_records_is_no_mismatch(
    engine: sa.Engine, tenant: Tenant
) -> None:
    """A quiet run (nothing new upstream) retries the quarantine alone; records that still fail
    go back to it, and the load succeeds."""
    bad = [spoil({"text": "a\x00"}, i) for i in (1, 2)]
    loader(engine, tenant).load([Page("messages", [msg(0), *bad])])
    counts = loader(engine, tenant).load([])
    assert (counts.inserted, counts.rejected) == (0, 2)
    assert sorted(r.attempts for r in rejects(engine, tenant)) == [2, 2]


def test_typed_json_keeps_what_json_cannot_say() -> None:
    record = {"x": float("inf"), "y": float("-inf"), "t": "nul\x00", "d": dt.date(2024, 1, 2)}
    text, _ = encode_record(record)
    assert repr(decode_record(json.loads(text))) == repr(record)


def test_a_refusal_no_check_foresees_is_found_by_bisection(fresh_engine: sa.Engine) -> None:
    """PostgreSQL refuses a record for a reason of its own (here a constraint): the loader finds
    which record by halving the batch, sets it aside, and commits the rest with the cursor."""
    tenant = make_tenant(fresh_engine)
    with fresh_engine.begin() as conn:
        conn.execute(
            sa.text("ALTER TABLE slack_messages ADD CONSTRAINT no_poison CHECK (text <> 'poison')")
        )
    records = [msg(i) for i in range(40)]
    records[17]["text"] = "poison"
    counts = loader(fresh_engine, tenant).load(
        [Page("messages", records, partition="C1", state={"n": 40})]
    )
    assert (counts.inserted, counts.rejected) == (39, 1)
    (reject,) = rejects(fresh_engine, tenant)
    assert "no_poison" in reject.reason and reject.record_key == ["C1", msg(17)["ts"]]
    assert state(fresh_engine, tenant) == {"C1": {"n": 40}}


def test_a_systematic_refusal_is_not_bisected_into_quarantine(fresh_engine: sa.Engine) -> None:
    tenant = make_tenant(fresh_engine)
    with fresh_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE slack_messages ADD CONSTRAINT nothing CHECK (false)"))
    with pytest.raises(LoadError, match="a mismatch between connector and table"):
        loader(fresh_engine, tenant).load([Page("messages", [msg(i) for i in range(200)])])
    assert rejects(fresh_engine, tenant) == [] and rows(fresh_engine, tenant, "ts") == []


def test_automatic_gc_pauses_only_while_loads_hold_batches() -> None:
    import gc

    from db.loader import _young_gc_only

    assert gc.isenabled()
    with _young_gc_only():
        assert not gc.isenabled()
        with _young_gc_only():  # a second load (another thread) at the same time
            pass
        assert not gc.isenabled()  # the first one still holds its batch
    assert gc.isenabled()
