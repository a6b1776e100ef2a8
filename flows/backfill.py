"""``backfill``: re-read a date window of one integration in checkpointed chunks.

The window ``[start, end)`` is cut into chunks of ``chunk_days``, oldest first. Each chunk reads
the provider's windowed streams (declared in the provider registry) with cursors of its own (stream
``messages@<chunk start>..<chunk end>``), so a crash inside a chunk resumes at its last page,
and a finished chunk is recorded in ``sync_state`` (stream ``backfill``, partition = the window)
so a later run of the same window skips it. The incremental cursor is never moved, and nothing
outside the chunk is soft-deleted (the backfill run mode, ``tasks/modes.py``). It needs the
backfill permission (docs/rbac.md).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger

from connectors import registry
from db.rbac import Action
from flows.provider_sync import guarded_run, run_stream_tasks
from tasks.modes import RunMode
from tasks.progress import SHOW
from tasks.run import RunRecord, chunks_done, record_chunk

__all__ = ["backfill", "chunks"]


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


@flow(name="backfill", flow_run_name="backfill-integration-{integration_id}-{start}..{end}")
def backfill(
    integration_id: int,
    start: date,
    end: date,
    requested_by: str,
    chunk_days: int = 7,
    run_grant: str | None = None,
) -> dict[str, Any]:
    """Backfill ``[start, end)`` of one integration; rerun the same call to resume.

    Args:
        integration_id: The integration to backfill (see `aos-sync integration list`).
        start: First day of the window (YYYY-MM-DD).
        end: Day after the window (YYYY-MM-DD, exclusive).
        requested_by: Who asks (required): a user's email with the backfill permission. With
            AOS_RUN_GRANT_KEY configured a user also needs `run_grant`.
        chunk_days: Days per chunk; finished chunks are not read again when the same backfill
            is rerun.
        run_grant: A single-use run grant proving `requested_by` (`aos-sync grant mint
            --action backfill`).
    """
    logger = get_run_logger()
    all_chunks = chunks(start, end, chunk_days)
    window = _window_key(start, end)

    def work(run: RunRecord) -> None:
        done = set(chunks_done(integration_id, window))
        todo = [c for c in all_chunks if _window_key(*c) not in done]
        logger.info(
            "backfill %s of integration %d: %d chunks, %d already done",
            window,
            integration_id,
            len(all_chunks),
            len(all_chunks) - len(todo),
            extra=SHOW,
        )
        windowed = registry.get(run.provider).windowed
        for n, chunk in enumerate(todo, 1):
            key = _window_key(*chunk)
            logger.info("chunk %d/%d: %s", n, len(todo), key, extra=SHOW)
            run_stream_tasks(run, windowed, RunMode.backfill(*chunk), label=f"{{stream}}@{key}")
            if run.errors:
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
