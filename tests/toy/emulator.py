"""The toy provider's API: ``GET /v1/items?after=N`` pages of ``{"id", "title"}`` items, with a
bearer token; the truth is ``ToyEmulator.items``."""

from __future__ import annotations

import json

from sandbox.faults import Fault
from sandbox.protocol import Request, Response, json_response

__all__ = ["ToyEmulator"]

PAGE = 3


class ToyEmulator:
    name = "toy"

    def __init__(self, *, seed: int = 0, time_scale: float = 1.0) -> None:
        self.token = f"toy-token-{seed}"
        self.items = {f"item-{i}": f"title {i}" for i in range(7)}

    def api_method(self, request: Request) -> str:
        return request.path.strip("/").replace("/", ".")

    def handle(self, request: Request, method: str) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return json_response({"error": "invalid_token"}, 401)
        if method != "v1.items":
            return json_response({"error": "not_found"}, 404)
        after = int(request.query.get("after", "0"))
        ids = sorted(self.items)
        page = ids[after : after + PAGE]
        nxt = after + PAGE if after + PAGE < len(ids) else None
        return json_response(
            {"items": [{"id": i, "title": self.items[i]} for i in page], "next": nxt}
        )

    def fault_response(self, fault: Fault) -> Response:
        return Response(int(fault.kind), json.dumps({"error": fault.kind}).encode())

    def faulted_response(self, fault: Fault, request: Request, method: str) -> Response:
        return self.fault_response(fault)

    def revoke_request_token(self, request: Request) -> None:
        self.token = "revoked"

    def env(self, base_url: str) -> dict[str, str]:
        return {"AOS_TOY_API_URL": f"{base_url}/v1/"}
