"""What the provider registry builds this provider's connector with (see connectors/registry.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.common import CheckUnavailable, ConnectorError, RunStats, Secret
from connectors.kit.holds import Holds

from . import MetaAdsConfig, MetaAdsConnector
from .app import APP_ID_ENV, APP_SECRET_ENV, configured_app
from .errors import MetaAuthError
from .transport import MetaTransport

__all__ = ["build_reader", "check_config", "token_expiry"]


def build_reader(
    token: Secret, settings: Mapping[str, Any], *, holds: Holds | None = None
) -> MetaAdsConnector:
    """The connector for one integration: its token and its config with per-run overrides;
    every call carries ``appsecret_proof`` when the app secret is configured (``app.py``);
    ad account pauses are kept in ``holds``, where the task layer's other readers see them."""
    return MetaAdsConnector(
        token, MetaAdsConfig.from_dict(settings), app=configured_app(), holds=holds
    )


def check_config(config: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for a config the connector cannot run with (a breakdown set Meta
    does not report, a page size below one, ...): asked when the config is set and before
    every run, so no run spends a request to learn it."""
    MetaAdsConfig.from_dict(config)


def token_expiry(bundle: Mapping[str, Any]) -> datetime | None:
    """When the bundle's access token expires, from ``GET /debug_token`` (``None``: never).

    Meta tokens have no refresh token, so this is how a run learns it must warn. Meta answers
    ``debug_token`` only to the app's access token (``app.py``), so the check needs the app's
    id and secret; without them, or when the call itself is refused or keeps failing, the
    check cannot run: :class:`CheckUnavailable`, a warning on the run and never a failed run.
    Only Meta's verdict on the token (``is_valid: false``: expired, or invalidated by a
    password change) raises :class:`MetaAuthError`, as its first refused call would."""
    token = Secret(str(bundle["access_token"]))
    app = configured_app(bundle)
    if app is None:
        raise CheckUnavailable(
            f"the token's expiry was not checked: {APP_ID_ENV} and {APP_SECRET_ENV} are not "
            "set where the sync runs, and Meta answers debug_token only to the app's token"
        )
    transport = MetaTransport(app.access_token(), MetaAdsConfig(), RunStats())
    try:
        body = transport.call(
            "GET", "debug_token", ("debug_token",), {"input_token": token.reveal()}
        )
    except ConnectorError as exc:  # the app's token refused, or the call kept failing
        raise CheckUnavailable(f"the token's expiry was not checked: {exc}") from None
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
