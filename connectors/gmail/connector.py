"""``GmailConnector``: the :class:`connectors.common.StreamReader` for one mailbox.

``labels`` is the full list every run (``labels.list``, then batched ``labels.get`` for the
counts, which the list omits) ending with a :class:`Reconcile`, so deleted labels are
soft-deleted; a label whose ``labels.get`` fails is skipped (see ``_labels``). ``messages``
has one cursor per mailbox (see ``messages.py`` and ``cursor.py``) and is the windowed
stream: a run's :class:`~connectors.kit.reader.Window` (a ``since`` run, a full refresh, a
backfill chunk) reaches it.

``read`` is the kit's read loop (``connectors.kit.reader``): it dispatches to the reader
functions below, checks and counts their pages and stops cleanly at ``max_requests``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from connectors.common import Page, Reconcile, RunStats, Secret, StreamSpec, TokenRenewal
from connectors.kit import PartitionFailures, ReadLoop
from connectors.kit.reader import Window

from . import settings
from .config import GmailConfig
from .messages import MailboxReader
from .records import GmailLabel, label_record
from .streams import STREAMS
from .transport import GmailTransport


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GmailConnector:
    """Reads labels and messages of one Gmail mailbox through google-api-python-client.

    ``token`` is a current access token (the task layer refreshes it with
    :func:`connectors.google_auth.refresh_google_token` first); ``renew`` gives a fresh one
    when Gmail refuses it mid-run (it lives about an hour). ``now`` is accepted for parity with
    the other connectors; Gmail's cursor is the mailbox historyId, not a clock.
    """

    def __init__(
        self,
        token: Secret,
        config: GmailConfig,
        base_url: str | None = None,
        now: Callable[[], datetime] = _utc_now,
        *,
        sleep: Callable[[float], None] | None = None,
        renew: TokenRenewal | None = None,
    ) -> None:
        self.config = config
        self.stats = RunStats()
        self.streams: Mapping[str, StreamSpec] = STREAMS
        self._now = now
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self._transport = GmailTransport(
            token, config, self.stats, base_url=base_url, renew=renew, **kwargs
        )
        self._messages = MailboxReader(self._transport, config, self.stats)
        self._loop = ReadLoop(
            "Gmail",
            self.streams,
            self.stats,
            {"labels": self._labels},
            windowed={"messages": self._messages.read},
        )

    def read(
        self,
        stream: str,
        state: Mapping[str, Mapping[str, Any]],
        window: Window | None = None,
    ) -> Iterator[Page]:
        """Pages of ``stream`` through the kit's read loop (see the module docstring)."""
        return self._loop.read(stream, state, window)

    def _labels(self, _cursor: Mapping[str, Any] | None) -> Iterator[Page]:
        """Each label is a partition: one whose ``labels.get`` fails is skipped with a warning
        (its row keeps its last counts and, being listed, is never soft-deleted); the stream
        fails when no label could be read. The reconcile rides on the last page only, so it
        exists only when ``labels.list`` answered in full."""
        users = self._transport.service.users()
        listed = self._transport.call(
            "users.labels.list", lambda: users.labels().list(userId=settings.USER_ID)
        )
        ids = [str(label["id"]) for label in listed["labels"] if label.get("id")]
        alive: list[tuple[Any, ...]] = []
        partitions = PartitionFailures("Gmail labels", self.stats)
        size = self.config.batch_size
        chunks = [ids[i : i + size] for i in range(0, len(ids), size)] or [[]]
        for number, chunk in enumerate(chunks, start=1):
            get = users.labels().get
            result = self._transport.batch(
                "users.labels.get",
                {
                    label_id: partial(
                        get, userId=settings.USER_ID, id=label_id, fields=settings.LABEL_FIELDS
                    )
                    for label_id in chunk
                },
            )
            records: list[GmailLabel] = []
            for label_id in chunk:
                if label_id in result.answers:
                    records.append(label_record(result.answers[label_id]))
                    partitions.succeeded()
                elif label_id in result.failed:
                    partitions.failed(f"label {label_id}", result.failed[label_id])
                # A label deleted between list and get answers 404 (gone): it is not alive.
                if label_id not in result.gone:
                    alive.append((label_id,))
            page = Page(stream="labels", records=records)
            if number == len(chunks):
                partitions.finish()
                # Only a completed listing may claim that missing labels are gone.
                page.reconcile = Reconcile(where={}, alive_keys=alive)
            yield page
