# ruff: noqa: S608 -- the f-strings build GAQL queries (ids and times we format), not SQL
"""Campaigns, ad groups and ads of one account: what changed since the last run, or a snapshot.

The cursor of an account (its partition of the entity stream) is ``{"changes_through": T}``
(UTC, ISO): every change up to ``T`` is stored. An incremental run asks ``change_status`` for
the stream's resource type changed in ``[T - overlap, now]`` (times in the account's zone, the
overlap covering the up-to-three-minute delay before a change shows), then reads only those
entities by id (``WHERE campaign.id IN (...)``, ``settings.ENTITY_IDS_PER_QUERY`` ids per
query) and upserts them. A ``REMOVED`` entity is read like any other: removal is a status,
never a deletion.

The account is read whole instead -- one snapshot query whose last page claims the account's
rows (:func:`~connectors.kit.listing.complete_listing`, so what Google no longer lists is
soft-deleted) -- when there is no cursor (a first sync, a full refresh), when the cursor is
older than ``change_status`` reaches (``settings.CHANGE_STATUS_USABLE_DAYS``), or when the
change list reaches the query's LIMIT (``GoogleAdsConfig.change_status_limit``): a list that
long may be cut short, so it is not trusted.

Either way the cursor moves to the time the run started, on the account's last page, so it
commits with the rows; a run that stops half-way leaves the old cursor and the next run asks
again from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from connectors.common import Page
from connectors.kit.listing import complete_listing

from . import settings
from .config import GoogleAdsConfig
from .records import Customer, ad_group_record, ad_record, campaign_record, enum_name
from .streams import STREAMS
from .transport import GoogleAdsTransport

__all__ = ["CURSOR", "EntityReader"]

CURSOR: Final = "changes_through"
_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


class _Entity:
    """One entity stream: its resource, fields, record function, the change_status type
    that names it and the field its changed ids are filtered on."""

    def __init__(
        self,
        resource: str,
        fields: tuple[str, ...],
        record: Callable[[Any], Any],
        change_type: str,
        id_field: str,
    ) -> None:
        self.resource = resource
        self.fields = fields
        self.record = record
        self.change_type = change_type
        self.id_field = id_field

    def query(self, where: str = "") -> str:
        return f"SELECT {', '.join(self.fields)} FROM {self.resource}{where}"


ENTITIES: Final[dict[str, _Entity]] = {
    "campaigns": _Entity(
        "campaign", settings.CAMPAIGN_FIELDS, campaign_record, "CAMPAIGN", "campaign.id"
    ),
    "ad_groups": _Entity(
        "ad_group", settings.AD_GROUP_FIELDS, ad_group_record, "AD_GROUP", "ad_group.id"
    ),
    "ads": _Entity(
        "ad_group_ad", settings.AD_FIELDS, ad_record, "AD_GROUP_AD", "ad_group_ad.ad.id"
    ),
}


def _changed_id(row: Any, change_type: str) -> int:
    """The id of the entity a change_status row names (its resource name's last part;
    an ad's is ``adGroupAds/<ad group>~<ad>``)."""
    change = row.change_status
    if change_type == "CAMPAIGN":
        name = change.campaign
    elif change_type == "AD_GROUP":
        name = change.ad_group
    else:
        name = change.ad_group_ad
    return int(name.rsplit("/", 1)[-1].rsplit("~", 1)[-1])


class EntityReader:
    """Reads the entity streams of the accounts handed to it (see the module docstring)."""

    def __init__(
        self,
        transport: GoogleAdsTransport,
        config: GoogleAdsConfig,
        now: Callable[[], datetime],
    ) -> None:
        self._transport = transport
        self.config = config
        self._now = now

    def read(
        self, stream: str, customer: Customer, cursor: Mapping[str, Any] | None
    ) -> Iterator[Page]:
        entity = ENTITIES[stream]
        until = self._now()
        since = self.since(cursor, until)
        ids = self._changed(stream, entity, customer, since, until) if since else None
        if ids is None:
            pages = self._snapshot(stream, entity, customer)
        else:
            pages = self._by_id(stream, entity, customer, ids)
        yield from _last_carries(pages, {CURSOR: until.isoformat()})

    @staticmethod
    def since(cursor: Mapping[str, Any] | None, until: datetime) -> datetime | None:
        """Where this run's change list starts, or ``None`` when ``change_status`` cannot
        be used (no cursor, or one older than it reaches)."""
        saved = (cursor or {}).get(CURSOR)
        if not saved:
            return None
        through = datetime.fromisoformat(saved)
        if until - through > timedelta(days=settings.CHANGE_STATUS_USABLE_DAYS):
            return None
        return through - timedelta(minutes=settings.CHANGE_STATUS_OVERLAP_MINUTES)

    def _changed(
        self,
        stream: str,
        entity: _Entity,
        customer: Customer,
        since: datetime,
        until: datetime,
    ) -> list[int] | None:
        """The ids of the stream's entities changed in ``[since, until]``; ``None`` when the
        list reached the LIMIT."""
        limit = self.config.change_status_limit
        query = (
            f"SELECT {', '.join(settings.CHANGE_STATUS_FIELDS)} FROM change_status "
            f"WHERE change_status.last_change_date_time BETWEEN "
            f"'{_local(since, until, customer)}' AND '{_local(until, until, customer)}' "
            f"AND change_status.resource_type = {entity.change_type} "
            f"ORDER BY change_status.last_change_date_time LIMIT {limit}"
        )
        seen: set[str] = set()  # resource names: a resent stream repeats rows
        ids: set[int] = set()
        what = f"{stream} changes"
        for batch in self._transport.search(what, customer.id, customer.login, lambda: query):
            for row in batch:
                if enum_name(row.change_status, "resource_type") != entity.change_type:
                    continue
                seen.add(row.change_status.resource_name)
                ids.add(_changed_id(row, entity.change_type))
        if len(seen) >= limit:
            return None
        return sorted(ids)

    def _by_id(
        self, stream: str, entity: _Entity, customer: Customer, ids: list[int]
    ) -> Iterator[Page]:
        """The changed entities, upserted; nothing is claimed gone."""
        size = settings.ENTITY_IDS_PER_QUERY
        for start in range(0, len(ids), size):
            listed = ", ".join(str(i) for i in ids[start : start + size])
            query = entity.query(f" WHERE {entity.id_field} IN ({listed})")
            for records in self._batches(stream, entity, customer, query):
                yield Page(stream=stream, partition=customer.id, records=records)
        # Ends with a page of its own: a query with no match streams no message at all, so
        # every id may come back empty, and the cursor still has to ride on a page.
        yield Page(stream=stream, partition=customer.id)

    def _snapshot(self, stream: str, entity: _Entity, customer: Customer) -> Iterator[Page]:
        """Every entity of the account; the last page claims the account's rows."""
        key = STREAMS[stream].primary_key
        batches = self._batches(stream, entity, customer, entity.query())
        where = {"customer_id": customer.customer_id}
        for page in complete_listing(stream, batches, key, where=where):
            page.partition = customer.id
            yield page

    def _batches(
        self, stream: str, entity: _Entity, customer: Customer, query: str
    ) -> Iterator[list[Any]]:
        """Records of one query in batches; a broken stream is sent again whole, and rows
        already handed over are skipped."""
        key = STREAMS[stream].primary_key
        seen: set[tuple[Any, ...]] = set()
        for batch in self._transport.search(stream, customer.id, customer.login, lambda: query):
            records = []
            for row in batch:
                rec = entity.record(row)
                k = tuple(rec[f] for f in key)
                if k not in seen:
                    seen.add(k)
                    records.append(rec)
            yield records


def _local(moment: datetime, until: datetime, customer: Customer) -> str:
    """``moment`` as the account's wall-clock time. When the zone's offset differs between
    ``moment`` and ``until`` (a clock change in between), the start moves back by the
    difference, so a repeated hour cannot make the range empty or skip changes."""
    zone = ZoneInfo(customer.time_zone)
    local = moment.astimezone(zone)
    shift = abs(
        (until.astimezone(zone).utcoffset() or timedelta()) - (local.utcoffset() or timedelta())
    )
    return (local - shift).strftime(_TIME_FORMAT)


def _last_carries(pages: Iterable[Page], state: Mapping[str, Any]) -> Iterator[Page]:
    """``pages`` with ``state`` on the last one (it commits with the account's last rows)."""
    held: Page | None = None
    for page in pages:
        if held is not None:
            yield held
        held = page
    assert held is not None, "every entity read ends with a page"
    held.state = dict(state)
    yield held
