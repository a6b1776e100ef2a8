"""The Meta app the integrations were connected through: its id and secret, when configured.

Two things need it at sync time. ``GET /debug_token`` must be called with an app access token
(``{app_id}|{app_secret}``) or a token of one of the app's developers; anyone else's token is
refused with ``(#100) You must provide an app access token, or a user access token that is an
owner or developer of the app`` (Graph API reference, "Debug Token"). And an app with
*Require App Secret* on (App Settings > Advanced) refuses every call that carries no
``appsecret_proof``, the HMAC-SHA256 of the access token under the app secret (Graph API
"Securing Requests"): the facebook-business SDK adds it to every call once it is given the
secret (``FacebookSession``).

The settings are the connect flow's own (``AOS_META_CLIENT_ID``, ``AOS_META_CLIENT_SECRET``,
``connectors/oauth/meta.py``), read from the worker's environment; a token bundle that holds
``app_id`` and ``app_secret`` (credentials pasted by hand for another app) takes precedence.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.common import Secret

__all__ = ["APP_ID_ENV", "APP_SECRET_ENV", "MetaApp", "configured_app"]

APP_ID_ENV = "AOS_META_CLIENT_ID"
APP_SECRET_ENV = "AOS_META_CLIENT_SECRET"


@dataclass(frozen=True)
class MetaApp:
    app_id: str
    secret: Secret

    def access_token(self) -> Secret:
        """The app access token, ``{app_id}|{app_secret}``."""
        return Secret(f"{self.app_id}|{self.secret.reveal()}")


def configured_app(
    bundle: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> MetaApp | None:
    """The bundle's app, else the connect settings' app; ``None`` when neither is set."""
    bundle = bundle or {}
    if bundle.get("app_id") and bundle.get("app_secret"):
        return MetaApp(str(bundle["app_id"]), Secret(str(bundle["app_secret"])))
    source = os.environ if env is None else env
    app_id = source.get(APP_ID_ENV, "").strip()
    secret = source.get(APP_SECRET_ENV, "").strip()
    return MetaApp(app_id, Secret(secret)) if app_id and secret else None
