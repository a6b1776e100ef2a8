"""Facebook Login for the Meta emulator: the login dialog, the code exchange, and app removal.

* ``GET /v26.0/dialog/oauth`` (``www.facebook.com`` on the real service): the signed-in test
  user (``knobs.user``: a business id, the business the person administers) answers; the
  browser is redirected to ``redirect_uri`` with ``code`` and ``state``, or with
  ``error=access_denied&error_reason=user_denied`` as Facebook does.
* ``GET oauth/access_token?client_id&redirect_uri&client_secret&code``: a short-lived (2 h) user
  token carrying the granted permissions; ``fb_exchange_token`` (the emulator's own) makes it
  long-lived.
* ``DELETE me/permissions``: the user removes the app; every token of that user answers code
  190 (subcode 458, "the user has not authorized application") from then on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.consent import (
    CodeBook,
    ConsentKnobs,
    PendingCode,
    consent_page,
    error_page,
    redirect,
)
from sandbox.ids import derive_key
from sandbox.meta.graph import GraphError
from sandbox.protocol import Request, Response, json_response

if TYPE_CHECKING:
    from sandbox.meta.emulator import MetaEmulator

__all__ = ["DIALOG_PATH", "MetaOAuth", "REMOVED_SUBCODE"]

DIALOG_PATH = "dialog/oauth"
REMOVED_SUBCODE = 458


class MetaOAuth:
    """The consent side of the Meta emulator (see the module docstring)."""

    def __init__(self, emulator: MetaEmulator) -> None:
        self.emulator = emulator
        self.knobs = ConsentKnobs()
        self.codes = CodeBook("AQ")
        self.revoked: list[str] = []  # user ids that removed the app

    def person(self, business_id: str) -> str:
        """The id of the (human) Facebook user who administers ``business_id``."""
        return str(10**14 + derive_key(self.emulator.seed, "person", business_id) % 10**14)

    def handle(self, request: Request, parts: list[str]) -> Response | None:
        """The answer when ``request`` is for one of these endpoints, else ``None``."""
        path = "/".join(parts)
        if path == DIALOG_PATH and request.verb == "GET":
            return self._dialog(request.params)
        if path == "oauth/access_token" and request.params.get("code"):
            return self._guard(lambda: self._exchange(request.params))
        if path == "me/permissions" and request.verb == "DELETE":
            return self._guard(lambda: self._remove(request))
        return None

    @staticmethod
    def _guard(answer: Any) -> Response:
        try:
            return json_response(answer())
        except GraphError as error:
            return json_response(error.payload(), status=error.status)

    def _dialog(self, params: dict[str, Any]) -> Response:
        self.knobs.screens += 1
        if str(params.get("client_id") or "") != self.emulator.app_id:
            return error_page(400, "Invalid App ID", "The provided app ID does not look valid.")
        uri = str(params.get("redirect_uri") or "")
        if not self.knobs.accepts(uri):
            return error_page(400, "URL Blocked", "This redirect failed: not whitelisted.")
        state = str(params.get("state") or "")
        back = {"state": state} if state else {}
        deny, chosen = self.knobs.answer(params)
        if not deny and chosen is None:
            choices = [(b.id, b.name) for b in self.emulator.businesses.values()]
            scopes = [s for s in str(params.get("scope") or "").split(",") if s]
            return consent_page("AudienceOS Sync", params, choices, scopes)
        business = self.emulator.businesses.get(chosen or "")
        if deny or business is None:
            return redirect(
                uri,
                {
                    "error": "access_denied",
                    "error_code": "200",
                    "error_description": "Permissions error",
                    "error_reason": "user_denied",
                    **back,
                },
            )
        requested = [s for s in str(params.get("scope") or "").split(",") if s]
        granted = tuple(s for s in requested if s not in self.knobs.withhold)
        code = self.codes.issue(
            PendingCode(business.id, self.emulator.app_id, uri, granted or ("public_profile",))
        )
        return redirect(uri, {"code": code, **back})

    def _exchange(self, params: dict[str, Any]) -> dict[str, Any]:
        if str(params.get("client_id")) != self.emulator.app_id:
            raise GraphError(101, "Error validating application. Invalid application ID.")
        if str(params.get("client_secret")) != self.emulator.app_secret:
            raise GraphError(1, "Error validating client secret.")
        pending = self.codes.redeem(str(params.get("code") or ""))
        if pending is None:
            raise GraphError(
                100, "This authorization code has been used.", subcode=36009, kind="OAuthException"
            )
        if str(params.get("redirect_uri") or "") != pending.redirect_uri:
            raise GraphError(
                100,
                "Error validating verification code. Please make sure your redirect_uri is "
                "identical to the one you used in the OAuth dialog request",
                subcode=36008,
                kind="OAuthException",
            )
        business = self.emulator.businesses[pending.subject]
        record = self.emulator.issue_token(business, user_id=self.person(business.id))
        record.scopes = pending.scopes
        return {"access_token": record.token, "token_type": "bearer", "expires_in": 7200}

    def _remove(self, request: Request) -> dict[str, Any]:
        record = self.emulator._auth(request)
        for other in self.emulator.tokens.values():
            if other.user_id == record.user_id:
                other.invalid_subcode = REMOVED_SUBCODE
        self.revoked.append(record.user_id)
        return {"success": True}
