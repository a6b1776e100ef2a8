"""The toy provider's connector: one stream, ``items``, a full listing each run."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from connectors.common import Page, Reconcile, RunStats, Secret, StreamSpec

__all__ = ["ToyConnector", "build_reader"]

STREAMS = {"items": StreamSpec(name="items", table="toy_items", primary_key=("item_id",))}


class ToyConnector:
    streams = STREAMS

    def __init__(self, token: Secret, settings: Mapping[str, Any]) -> None:
        self.token = token
        self.base = os.environ.get("AOS_TOY_API_URL", "https://toy.invalid/v1/")
        self.stats = RunStats()

    def read(self, stream: str, state: Mapping[str, Mapping[str, Any]]) -> Iterator[Page]:
        alive: list[tuple[Any, ...]] = []
        after: int | None = 0
        with httpx.Client(timeout=10) as http:
            while after is not None:
                answer = http.get(
                    self.base + "items",
                    params={"after": after},
                    headers={"Authorization": f"Bearer {self.token.reveal()}"},
                )
                self.stats.requests += 1
                answer.raise_for_status()
                body = answer.json()
                records = [{"item_id": i["id"], "title": i["title"]} for i in body["items"]]
                alive += [(r["item_id"],) for r in records]
                after = body["next"]
                self.stats.pages += 1
                self.stats.records += len(records)
                done = after is None
                yield Page(
                    stream,
                    records,
                    reconcile=Reconcile(where={}, alive_keys=alive) if done else None,
                )


def build_reader(token: Secret, settings: Mapping[str, Any]) -> ToyConnector:
    return ToyConnector(token, settings)
