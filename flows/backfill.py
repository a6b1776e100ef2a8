"""``backfill``: re-read a date window of one integration in checkpointed chunks.

The window ``[start, end)`` is cut into chunks of ``chunk_days``, oldest first. Each chunk reads
the provider's dated streams (Slack and Gmail messages) with cursors of its own (stream
``messages@<chunk start>..<chunk end>``), so a crash inside a chunk resumes at its last page,
and a finished chunk is recorded in ``sync_state`` (stream ``backfill``, partition = the window)
so a later run of the same window skips it. The incremental cursor is never moved. It needs the
backfill permission (DESIGN §5).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger, task

from db import state, tenancy
from db.engine import get_engine
from db.rbac import Action
from flows.provider_sync import guarded_run, run_stream_tasks
from tasks.providers import get_provider

__all__ = ["backfill", "chunks"]

PROGRESS_STREAM = "backfill"


def chunks(start: date, end: date, chunk_days: int) -> list[tuple[date, date]]:
    """``[start, end)`` cut into ``chunk_days`` pieces, oldest first."""
    if end <= start:
        raise ValueError(f"empty backfill window: {start} .. {end} (end is exclusive)")
    if chunk_days < 1:
        raise ValueError("chunk_days must be at least 1")
    out, cur = [], start
    while cur < end:
        nxt = min(cur + timedelta(days=chunk_days), end)
        out.append((cur, nxt))
        cur = nxt
    return out


def _window_key(start: date, end: date) -> str:
    return f"{start.isoformat()}..{end.isoformat()}"


@task(name="record-chunk")
def record_chunk(integration_id: int, window: str, chunk: str) -> None:
    """Mark a chunk of a window as finished (after all its rows and cursors committed)."""
    with get_engine().begin() as conn:
        done = state.load_state(conn, integration_id, PROGRESS_STREAM).get(window, {})
        chunks_done = sorted({*done.get("done", []), chunk})
        state.save_state(conn, integration_id, PROGRESS_STREAM, window, {"done": chunks_done})


@flow(name="backfill")
def backfill(
    integration_id: int,
    start: date,
    end: date,
    requested_by: str | None = None,
    chunk_days: int = 7,
    run_grant: str | None = None,
) -> dict[str, Any]:
    """Backfill ``[start, end)`` of one integration; rerun the same call to resume."""
    logger = get_run_logger()
    all_chunks = chunks(start, end, chunk_days)
    window = _window_key(start, end)

    def work(streams: dict[str, Any], errors: list[str]) -> None:
        # Runs after authorize: only now may the integration (and its provider) be looked up.
        with get_engine().connect() as conn:
            provider = get_provider(tenancy.get_integration(conn, integration_id).provider)
            saved = state.load_state(conn, integration_id, PROGRESS_STREAM).get(window, {})
        done = set(saved.get("done", []))
        todo = [c for c in all_chunks if _window_key(*c) not in done]
        logger.info(
            "backfill %s of integration %d: %d chunks, %d already done",
            window,
            integration_id,
            len(all_chunks),
            len(all_chunks) - len(todo),
        )
        for n, chunk in enumerate(todo, 1):
            key = _window_key(*chunk)
            logger.info("chunk %d/%d: %s", n, len(todo), key)
            run_stream_tasks(
                integration_id,
                provider.windowed,
                streams,
                errors,
                window=chunk,
                label=f"{{stream}}@{key}",
            )
            if errors:
                return  # stop at the first failed chunk; a rerun resumes there
            record_chunk(integration_id, window, key)

    return guarded_run(
        None,  # any provider with a connector; authorize runs before the integration is read
        integration_id,
        action=Action.BACKFILL,
        requested_by=requested_by,
        run_grant=run_grant,
        trigger="backfill",
        params={"start": start.isoformat(), "end": end.isoformat(), "chunk_days": chunk_days},
        work=work,
    )
