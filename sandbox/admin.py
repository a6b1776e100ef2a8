"""The ``/_sandbox/`` admin surface, so a process that did not start the sandbox can drive it.

Routes (JSON in, JSON out):

* ``GET /_sandbox/health`` -- provider name and time scale;
* ``GET /_sandbox/log[?method=...]`` -- the request log (already redacted);
  ``DELETE /_sandbox/log`` or ``POST /_sandbox/log/clear`` empties it;
* ``GET /_sandbox/faults`` -- the rules; ``POST /_sandbox/faults`` with
  ``{"kind": "429", "method": "conversations.history", "times": 3, "retry_after": 1}``
  adds one for this server's provider (``"match": {"channel": "C1"}`` narrows it to requests
  with those parameters, ``"options"`` are kind-specific: see ``sandbox.faults``); ``DELETE /_sandbox/faults`` or
  ``POST /_sandbox/faults/clear`` removes them.

No route returns credentials: those are printed by ``python -m sandbox serve`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.protocol import Request, Response, json_response

if TYPE_CHECKING:
    from sandbox.server import ProviderServer

__all__ = ["handle_admin"]


def _number(value: Any, cast: type) -> Any:
    return None if value in (None, "") else cast(value)


def _mapping(value: Any) -> dict[str, Any] | None:
    if value in (None, ""):
        return None
    if not isinstance(value, dict):
        raise ValueError("match and options must be JSON objects")
    return value


def handle_admin(server: ProviderServer, request: Request) -> Response:
    route = request.path.removeprefix("/_sandbox/").strip("/")
    verb = request.verb
    provider = server.provider.name
    if route == "health":
        return json_response({"ok": True, "provider": provider, "time_scale": server.time_scale})
    if route == "log" and verb == "GET":
        entries = server.log.entries(provider=provider, method=request.query.get("method"))
        return json_response({"ok": True, "entries": [e.as_dict() for e in entries]})
    if (route == "log" and verb == "DELETE") or (route == "log/clear" and verb == "POST"):
        server.log.clear()
        return json_response({"ok": True})
    if route == "faults" and verb == "GET":
        rules = [r.as_dict() for r in server.faults.rules() if r.provider == provider]
        return json_response({"ok": True, "faults": rules})
    if route == "faults" and verb == "POST":
        spec = request.params
        try:
            rule = server.faults.add(
                provider,
                kind=str(spec.get("kind", "")),
                method=spec.get("method") or None,
                times=_number(spec.get("times"), int),
                rate=_number(spec.get("rate"), float),
                retry_after=_number(spec.get("retry_after"), int) or 1,
                seconds=_number(spec.get("seconds"), float) or 2.0,
                match=_mapping(spec.get("match")),
                options=_mapping(spec.get("options")),
            )
        except (TypeError, ValueError) as exc:
            return json_response({"ok": False, "error": str(exc)}, status=400)
        return json_response({"ok": True, "fault": rule.as_dict()})
    if (route == "faults" and verb == "DELETE") or (route == "faults/clear" and verb == "POST"):
        server.faults.clear(provider)
        return json_response({"ok": True})
    return json_response({"ok": False, "error": "unknown_admin_route"}, status=404)
