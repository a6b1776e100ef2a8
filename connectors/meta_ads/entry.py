"""What the provider registry builds this provider's connector with (see connectors/registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.common import RunStats, Secret

from . import MetaAdsConfig, MetaAdsConnector
from .errors import MetaAuthError
from .transport import MetaTransport

__all__ = ["build_reader", "token_expiry"]


def build_reader(token: Secret, settings: Mapping[str, Any]) -> MetaAdsConnector:
    """The connector for one integration: its token and its config with per-run overrides."""
    return MetaAdsConnector(token, MetaAdsConfig.from_dict(settings))


def token_expiry(bundle: Mapping[str, Any]) -> datetime | None:
    """When the bundle's access token expires, from ``GET /debug_token`` (``None``: never).

    Meta tokens have no refresh token, so this is how a run learns it must warn. The token
    inspects itself, or the app's token does when the bundle holds ``app_id`` and
    ``app_secret``. A token Meta calls invalid (expired, or invalidated by a password change)
    raises :class:`MetaAuthError`, as its first refused call would."""
    token = Secret(str(bundle["access_token"]))
    caller = token
    if bundle.get("app_id") and bundle.get("app_secret"):
        caller = Secret(f"{bundle['app_id']}|{bundle['app_secret']}")
    transport = MetaTransport(caller, MetaAdsConfig(), RunStats())
    body = transport.call("GET", "debug_token", ("debug_token",), {"input_token": token.reveal()})
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    assert isinstance(data, dict)
    if not data.get("is_valid"):
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        assert isinstance(error, dict)
        code = f"{error.get('code', 190)}" + (
            f"/{error['subcode']}" if error.get("subcode") else ""
        )
        raise MetaAuthError(
            f"Meta says the access token is no longer valid (debug_token: code {code})",
            provider="meta_ads",
            method="debug_token",
            code=str(error.get("code", 190)),
        )
    expires = int(data.get("expires_at") or 0)
    return datetime.fromtimestamp(expires, UTC) if expires else None
