"""The provider kit on its own: the retry loop, the read loop, the paginator, the limiter.

A toy transport whose ``send`` is scripted stands in for an SDK, so each rule is seen once
here; the Slack and Gmail tests show the same rules through the real SDKs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Any, NotRequired, TypedDict

import pytest

from connectors.common import (
    AuthError,
    ClientHint,
    ConnectorError,
    Page,
    PermanentError,
    Reconcile,
    RunStats,
    StreamSpec,
    TransientError,
)
from connectors.kit import (
    BudgetExhausted,
    Failure,
    Kind,
    PaginationLoop,
    ReadLoop,
    RecordShape,
    RetryPolicy,
    SlidingWindowLimiter,
    TokenPaginator,
    Transport,
    declare_streams,
    retry_after_seconds,
    shared_limiter,
)
from connectors.kit import limiter as limiter_module
from connectors.kit.reader import Window

# -- the retry loop ----------------------------------------------------------------------------


class Flaky(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.description)
        self.failure = failure


class Toy(Transport):
    """Answers come from ``script``: an exception is raised, anything else returned."""

    provider = "Toy"
    api_url_env = "AOS_TOY_API_URL"
    default_api_url = "https://toy.example/api"

    def __init__(self, script: list[Any], **policy: Any) -> None:
        self.slept: list[float] = []
        super().__init__(
            RunStats(),
            RetryPolicy(**{"attempts": 3, "backoff_base": 0.01, **policy}),
            sleep=self.slept.append,
        )
        self.script = list(script)

    def send(self) -> Any:
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def classify(self, method: str, error: Exception) -> Failure | None:
        return error.failure if isinstance(error, Flaky) else None

    def unusable(self, method: str, answer: Any) -> str | None:
        return None if answer != "damaged" else "damaged answer"


def flaky(kind: str, **kwargs: Any) -> Flaky:
    made: dict[str, Callable[..., Failure]] = {
        "transient": lambda: Failure.transient("HTTP 503", **kwargs),
        "reset": lambda: Failure.transient("ConnectionResetError", ambiguous=True),
        "429": lambda: Failure.rate_limited("HTTP 429", **kwargs),
        "auth": lambda: Failure.refused(AuthError("revoked")),
        "refused": lambda: Failure.refused(PermanentError("no", code="invalid")),
    }
    return Flaky(made[kind]())


def test_transient_failures_are_retried_then_raised_naming_the_call() -> None:
    toy = Toy([flaky("transient"), "damaged", {"ok": 1}])
    assert toy.request("things.list", toy.send) == {"ok": 1}
    assert (toy.stats.requests, toy.stats.retries, len(toy.slept)) == (3, 2, 2)
    toy = Toy([flaky("transient")] * 3)
    with pytest.raises(TransientError, match=r"Toy things\.list failed after 3 attempts") as e:
        toy.request("things.list", toy.send)
    assert (e.value.provider, e.value.method) == ("toy", "things.list")


def test_rate_limits_wait_the_hint_and_may_have_their_own_budget() -> None:
    toy = Toy([flaky("429", retry_after=7.0)] * 4 + ["ok"], rate_limit_retries=1)
    with pytest.raises(TransientError):  # 1 extra wait, then the 3 attempts: 4 429s spend all
        toy.request("m", toy.send)
    toy = Toy([flaky("429", retry_after=7.0)] * 4 + ["ok"], rate_limit_retries=2)
    assert toy.request("m", toy.send) == "ok"
    assert toy.stats.rate_limited == 4 and all(7.0 <= s <= 7.7 for s in toy.slept)


def test_server_errors_may_have_their_own_budget_lost_answers_never() -> None:
    toy = Toy([flaky("transient")] * 4 + ["ok"], server_error_retries=2)
    assert toy.request("m", toy.send) == "ok" and toy.stats.retries == 4
    toy = Toy([flaky("reset")] * 3 + ["ok"], server_error_retries=5)
    with pytest.raises(TransientError, match="after 3 attempts: ConnectionResetError"):
        toy.request("m", toy.send)
    toy = Toy(["damaged"] * 3 + ["ok"], server_error_retries=5)
    with pytest.raises(TransientError, match="damaged answer"):
        toy.request("m", toy.send)


def test_refusals_raise_at_once_and_foreign_errors_propagate() -> None:
    for kind, error in (("auth", AuthError), ("refused", PermanentError)):
        toy = Toy([flaky(kind), "never"])
        with pytest.raises(error):
            toy.request("m", toy.send)
        assert toy.stats.requests == 1 and toy.script == ["never"]
    toy = Toy([KeyError("a bug"), "never"])
    with pytest.raises(KeyError):
        toy.request("m", toy.send)


def test_a_call_that_must_not_run_twice_stops_after_an_ambiguous_failure() -> None:
    toy = Toy([flaky("reset"), "never"])
    with pytest.raises(TransientError, match="after 1 attempt: ConnectionResetError"):
        toy.request("oauth", toy.send, idempotent=False)
    toy = Toy([flaky("transient"), "ok"])  # refused before it was handled: safe to resend
    assert toy.request("oauth", toy.send, idempotent=False) == "ok"


def test_the_budget_stops_before_a_request_is_sent() -> None:
    toy = Toy(["a", "b", "c"])
    toy.max_requests = 2
    assert [toy.request("m", toy.send), toy.request("m", toy.send)] == ["a", "b"]
    with pytest.raises(BudgetExhausted) as stop:
        toy.request("m", toy.send)
    assert stop.value.limit == 2 and toy.script == ["c"] and toy.stats.requests == 2


def test_endpoint_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Toy.endpoint() == "https://toy.example/api/"
    monkeypatch.setenv("AOS_TOY_API_URL", "http://127.0.0.1:1")
    assert Toy.endpoint() == "http://127.0.0.1:1/" and Toy.endpoint("http://h/") == "http://h/"


def test_failure_kinds_and_retry_after() -> None:
    assert Failure.refused(AuthError("x")).kind is Kind.AUTH
    assert Failure.refused(PermanentError("x")).kind is Kind.PERMANENT
    assert Failure.transient("x").refusal is None
    assert retry_after_seconds({"Retry-After": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after": ["2"]}) == 2.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015"}, default=1.0) == 1.0
    assert retry_after_seconds(None) == 0.0 and retry_after_seconds({"Retry-After": "-3"}) == 0


# -- the paginator -----------------------------------------------------------------------------


def token(response: Mapping[str, Any]) -> str | None:
    return response.get("next")


def test_paginator_follows_ends_and_detects_loops() -> None:
    pages = TokenPaginator("Toy list", token)
    assert pages.has_next and pages.next_token is None
    pages.update({"next": "a"})
    pages.update({"next": "b"})
    assert pages.next_token == "b"
    with pytest.raises(PaginationLoop, match="Loop detected in Toy list pagination"):
        pages.update({"next": "a"})  # a loop over two tokens is a loop too
    assert not pages.has_next and pages.next_token is None
    pages = TokenPaginator("Toy list", token, start="saved")
    assert pages.next_token == "saved"
    with pytest.raises(ConnectorError):
        pages.update({"next": "saved"})
    pages = TokenPaginator("Toy list", token)
    pages.update({"next": ""})
    assert not pages.has_next


# -- the limiter -------------------------------------------------------------------------------


def test_shared_limiter_is_per_account_and_bucket_and_keeps_no_token() -> None:
    one = shared_limiter("toy", "xoxb-account-one", "m", 5, 60.0)
    assert shared_limiter("toy", "xoxb-account-one", "m", 5, 60.0) is one
    assert shared_limiter("toy", "xoxb-account-two", "m", 5, 60.0) is not one
    assert shared_limiter("toy", "xoxb-account-one", "other", 5, 60.0) is not one
    assert not any("xoxb" in str(key) for key in limiter_module._shared)


def test_settle_restamps_only_this_threads_spend() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(10, 1.0, clock=lambda: now[0], sleep=lambda s: None)
    limiter.acquire(4)
    other = threading.Thread(target=limiter.acquire, args=(4,))
    other.start()
    other.join()
    now[0] = 0.5
    limiter.settle()
    assert [e[0] for e in limiter._spent] == [0.0, 0.5]  # ours moved to the end, re-stamped
    limiter.settle()  # nothing left to settle: no change
    assert [e[0] for e in limiter._spent] == [0.0, 0.5]


# -- the read loop -----------------------------------------------------------------------------


class Row(TypedDict):
    room: str
    n: int
    note: NotRequired[str]
    _hint: str


SPECS = declare_streams(
    StreamSpec("rooms", "toy_rooms", ("room",), Row, client=ClientHint("_hint", "x")),
    StreamSpec("lines", "toy_lines", ("room", "n"), Row, partition_by="room"),
)


def row(room: str = "r1", n: int = 1) -> Row:
    return {"room": room, "n": n, "_hint": "h"}


def loop(**readers: Callable[[Any], Iterator[Page]]) -> ReadLoop:
    return ReadLoop("Toy", SPECS, RunStats(), readers)


def test_record_shape_reads_not_required_keys() -> None:
    shape = RecordShape.of(Row)
    assert shape.required == {"room", "n", "_hint"} and "note" in shape.allowed
    assert shape.mismatch({"room": "r", "n": 1, "_hint": "h", "note": "x"}) is None
    assert shape.mismatch({"room": "r", "x": 1}) == "missing ['_hint', 'n'], unexpected ['x']"


def test_partitioned_streams_get_every_cursor_the_others_their_own() -> None:
    given: dict[str, Any] = {}

    def rooms(cursor: Any) -> Iterator[Page]:
        given["rooms"] = cursor
        yield Page("rooms", [row()])

    def lines(cursors: Any) -> Iterator[Page]:
        given["lines"] = cursors
        yield Page("lines", [row("r2", 1), row("r2", 2)], partition="r2")

    reader = loop(rooms=rooms, lines=lines)
    state = {"": {"v": 1}, "r2": {"v": 2}}
    assert len(list(reader.read("rooms", state))) == 1
    assert len(list(reader.read("lines", state))) == 1
    assert given == {"rooms": {"v": 1}, "lines": state}
    assert (reader.stats.pages, reader.stats.records) == (2, 3)
    with pytest.raises(ValueError, match="unknown Toy stream 'nope'"):
        list(reader.read("nope", {}))


@pytest.mark.parametrize(
    ("stream", "page", "what"),
    [
        ("rooms", Page("lines", [row()]), "stream 'lines'"),
        ("rooms", Page("rooms", [row()], partition="r1"), "partition 'r1'"),
        ("lines", Page("lines", [row()]), "partition ''"),
        ("lines", Page("lines", [row("r1"), row("r9")], partition="r1"), "partition 'r9'"),
        ("rooms", Page("rooms", [{"room": "r1", "n": 1}]), "missing ['_hint']"),
        ("rooms", Page("rooms", deleted_keys=[("r1", 2)]), "a key that is not"),
        ("rooms", Page("rooms", reconcile=Reconcile({"rom": 1}, [])), "claim on ['rom']"),
    ],
)
def test_a_page_that_breaks_the_declaration_never_leaves(
    stream: str, page: Page, what: str
) -> None:
    reader = loop(rooms=lambda _: iter([page]), lines=lambda _: iter([page]))
    with pytest.raises(ConnectorError, match="connector bug") as raised:
        list(reader.read(stream, {}))
    assert what in str(raised.value) and reader.stats.pages == 0


def test_the_budget_ends_the_run_cleanly() -> None:
    def rooms(_: Any) -> Iterator[Page]:
        yield Page("rooms", [row()])
        raise BudgetExhausted(7)

    reader = loop(rooms=rooms, lines=lambda _: iter([Page("lines", partition="r")]))
    assert len(list(reader.read("rooms", {}))) == 1
    assert list(reader.read("lines", {})) == []  # later reads end at once
    (warning,) = reader.stats.warnings
    assert "max_requests=7" in warning and "reading rooms" in warning


def test_declarations_are_checked_when_the_loop_is_built() -> None:
    with pytest.raises(ValueError, match="differ"):
        ReadLoop("Toy", SPECS, RunStats(), {"rooms": lambda _: iter(())})
    bad = declare_streams(StreamSpec("rooms", "t", ("room",), Row, partition_by="floor"))
    with pytest.raises(ValueError, match="floor"):
        ReadLoop("Toy", bad, RunStats(), {"rooms": lambda _: iter(())})
    untyped = declare_streams(StreamSpec("rooms", "t", ("room",)))
    with pytest.raises(ValueError, match="row type"):
        ReadLoop("Toy", untyped, RunStats(), {"rooms": lambda _: iter(())})
    with pytest.raises(ValueError, match="declared twice"):
        declare_streams(SPECS["rooms"], SPECS["rooms"])


def test_a_window_reaches_windowed_streams_only() -> None:
    """A run's window is handed to the windowed streams' functions (with ``None`` on an
    incremental run) and refused for the others, so it is never silently ignored."""
    given: list[Any] = []

    def lines(cursors: Any, window: Window | None) -> Iterator[Page]:
        given.append((cursors, window))
        yield Page("lines", [row("r2", 1)], partition="r2")

    reader = ReadLoop("Toy", SPECS, RunStats(), {"rooms": lambda _: iter(())}, {"lines": lines})
    since = Window(date(2026, 1, 1))
    assert len(list(reader.read("lines", {"r2": {"v": 2}}, since))) == 1
    assert len(list(reader.read("lines", {}))) == 1
    assert given == [({"r2": {"v": 2}}, since), ({}, None)]
    assert reader.windowed == {"lines"}
    with pytest.raises(ValueError, match="rooms is not a windowed stream"):
        reader.read("rooms", {}, since)
    with pytest.raises(ValueError, match="two reader functions"):
        ReadLoop(
            "Toy",
            SPECS,
            RunStats(),
            {"rooms": lambda _: iter(()), "lines": lines},
            {"lines": lines},
        )
    with pytest.raises(ValueError, match="empty window"):
        Window(date(2026, 1, 2), date(2026, 1, 1), own_cursors=True)
    with pytest.raises(ValueError, match="up to now"):
        Window(date(2026, 1, 1), date(2026, 1, 2))
