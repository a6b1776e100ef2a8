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

Facebook Login for Business: a dialog request with ``config_id`` names a configuration of the
app (:meth:`MetaOAuth.add_configuration`; App Dashboard > Facebook Login for Business >
Configurations), which replaces ``scope`` -- its permissions are what is asked, and all of them
must be granted or none is ("All permissions that your app asks for during login must be
granted by your app user or your app won't be granted any permissions"). An unknown
``config_id`` gets an error page. A configuration of system-user tokens needs
``response_type=code`` and ``override_default_response_type=true`` (Meta's Facebook Login for
Business sample: "must be set to 'code' for System User access token"), and its code is
exchanged for a business integration system user's token that never expires (``debug_token``:
``type`` SYSTEM_USER, ``expires_at`` 0); ``fb_exchange_token`` refuses such a token, the
exchange being for user tokens ("Get Long-Lived Access Tokens").
"""

from __future__ import annotations

from dataclasses import dataclass
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

__all__ = ["DIALOG_PATH", "LoginConfiguration", "MetaOAuth", "REMOVED_SUBCODE"]

DIALOG_PATH = "dialog/oauth"
REMOVED_SUBCODE = 458


@dataclass(frozen=True)
class LoginConfiguration:
    """A Facebook Login for Business configuration: the token type it grants (``SYSTEM_USER``,
    a business integration system user's, or ``USER``) and the permissions it asks for."""

    config_id: str
    token_type: str
    permissions: tuple[str, ...]


class MetaOAuth:
    """The consent side of the Meta emulator (see the module docstring)."""

    def __init__(self, emulator: MetaEmulator) -> None:
        self.emulator = emulator
        self.knobs = ConsentKnobs()
        self.codes = CodeBook("AQ")
        self.revoked: list[str] = []  # user ids that removed the app
        self.configurations: dict[str, LoginConfiguration] = {}

    def add_configuration(
        self,
        token_type: str = "SYSTEM_USER",
        permissions: tuple[str, ...] = ("ads_read", "business_management"),
    ) -> LoginConfiguration:
        """A Facebook Login for Business configuration of the app; its id goes in
        ``AOS_META_CONFIG_ID``."""
        if token_type not in ("SYSTEM_USER", "USER"):
            raise ValueError("token_type is SYSTEM_USER or USER")
        number = len(self.configurations)
        config_id = str(10**14 + derive_key(self.emulator.seed, "login-config", number) % 10**14)
        config = LoginConfiguration(config_id, token_type, tuple(permissions))
        self.configurations[config_id] = config
        return config

    def person(self, business_id: str) -> str:
        """The id of the (human) Facebook user who administers ``business_id``."""
        return str(10**14 + derive_key(self.emulator.seed, "person", business_id) % 10**14)

    def system_user(self, business_id: str) -> str:
        """The id of the business integration system user the app gets in ``business_id``."""
        return str(10**14 + derive_key(self.emulator.seed, "bisu", business_id) % 10**14)

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
        config: LoginConfiguration | None = None
        if params.get("config_id"):
            config = self.configurations.get(str(params["config_id"]))
            problem = self._configuration_problem(config, params)
            if problem:
                return error_page(400, "Invalid configuration", problem)
        requested = (
            list(config.permissions)
            if config is not None
            else [s for s in str(params.get("scope") or "").split(",") if s]
        )
        deny, chosen = self.knobs.answer(params)
        if not deny and chosen is None:
            choices = [(b.id, b.name) for b in self.emulator.businesses.values()]
            return consent_page("AudienceOS Sync", params, choices, requested)
        business = self.emulator.businesses.get(chosen or "")
        if config is not None and self.knobs.withhold & set(config.permissions):
            deny = True  # a configuration is granted whole or not at all
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
        granted = tuple(s for s in requested if s not in self.knobs.withhold)
        extra = {"config_id": config.config_id} if config is not None else {}
        code = self.codes.issue(
            PendingCode(
                business.id, self.emulator.app_id, uri, granted or ("public_profile",), extra=extra
            )
        )
        return redirect(uri, {"code": code, **back})

    @staticmethod
    def _configuration_problem(
        config: LoginConfiguration | None, params: dict[str, Any]
    ) -> str | None:
        if config is None:
            return "The configuration ID is not valid for this app."
        if config.token_type == "SYSTEM_USER" and (
            params.get("response_type") != "code"
            or str(params.get("override_default_response_type")).lower() != "true"
        ):
            return (
                "A configuration of system-user access tokens needs response_type=code and "
                "override_default_response_type=true."
            )
        return None

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
        config = self.configurations.get(pending.extra.get("config_id", ""))
        if config is not None and config.token_type == "SYSTEM_USER":
            # A business integration system user of the client's business: never expires.
            record = self.emulator.issue_token(
                business, kind="SYSTEM_USER", user_id=self.system_user(business.id)
            )
            record.scopes = pending.scopes
            return {"access_token": record.token, "token_type": "bearer"}
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
