"""The layer that talks HTTP: slack-sdk's WebClient on the kit's transport.

Everything above this module sees ``SlackTransport.call(method, **params) -> dict`` and one of
four outcomes: the decoded body of a complete ``ok: true`` answer, :class:`AuthError`,
:class:`~connectors.slack.errors.SlackCallError` (a permanent refusal, sent once, carrying
Slack's error code and its ``needed``/``provided`` scopes), or
:class:`~connectors.common.TransientError` once the retries are spent.

Retries, pacing, counting and the request budget are the kit's (``connectors.kit``); the
WebClient is built with no retry handlers of its own, so one attempt is one HTTP request and
the counts in ``RunStats`` match what Slack saw. What is Slack's here: the failure
classification (``errors.py``), the fields an answer must carry to be usable
(``settings.REQUIRED_FIELDS``: an ``ok: true`` page without its list is damaged, and read as
empty it would end a listing early and let its reconcile soft-delete live rows), the per-method
rate tiers, and the warnings Slack attaches to a success.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk import WebClient

from connectors.common import RunStats, Secret
from connectors.kit import (
    Failure,
    RetryPolicy,
    SlidingWindowLimiter,
    Transport,
    shared_limiter,
)

from . import settings
from .config import SlackConfig
from .errors import classify

__all__ = ["SlackTransport", "next_cursor"]


def next_cursor(response: Mapping[str, Any]) -> str | None:
    """The cursor of the page after ``response``: ``response_metadata.next_cursor``, unless
    the answer says ``has_more: false`` (some methods send an empty cursor, some none)."""
    if response.get("has_more") is False:
        return None
    return (response.get("response_metadata") or {}).get("next_cursor") or None


class SlackTransport(Transport):
    """One workspace token (or none, for OAuth calls), paced per method, retried, counted and
    bounded by ``config.max_requests``."""

    provider = "Slack"
    api_url_env = settings.API_URL_ENV
    default_api_url = settings.DEFAULT_API_URL

    def __init__(
        self,
        token: Secret | None,
        config: SlackConfig,
        stats: RunStats,
        base_url: str | None = None,
        retry_backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # Backoff is time as the provider sees it, like its rate windows: a time-scaled sandbox
        # (``rate_scale``) shortens both, so tests of many faults in a row take seconds.
        policy = RetryPolicy(
            attempts=settings.CALL_ATTEMPTS,
            backoff_base=retry_backoff / config.rate_scale,
            max_backoff=settings.MAX_BACKOFF_SECONDS / config.rate_scale,
            rate_limit_retries=settings.RATE_LIMIT_RETRIES,
            server_error_retries=settings.SERVER_ERROR_RETRIES,
        )
        super().__init__(stats, policy, max_requests=config.max_requests, sleep=sleep)
        self._token = token
        self._config = config
        self._client = WebClient(
            token=token.reveal() if token is not None else None,
            base_url=self.endpoint(base_url),
            timeout=settings.REQUEST_TIMEOUT_SECONDS,
            retry_handlers=[],  # the kit retries: one attempt is one request
        )
        self._warned: set[str] = set()

    def call(self, method: str, *, idempotent: bool = True, **params: Any) -> dict[str, Any]:
        """Call one Web API method through the SDK's typed wrapper (``conversations.history``
        -> ``conversations_history``) and return the decoded body of a usable ``ok: true``
        answer. ``idempotent=False``: never resend after the request may have taken effect.
        Warnings Slack attaches to a success go to ``stats.warnings``."""
        sdk_method = getattr(self._client, method.replace(".", "_"))
        data = self.request(method, lambda: sdk_method(**params).data, idempotent=idempotent)
        self._note_warnings(method, params, data)
        return dict(data)

    def classify(self, method: str, error: Exception) -> Failure | None:
        return classify(method, error)

    def unusable(self, method: str, answer: Any) -> str | None:
        if not isinstance(answer, dict):
            return "response body is not a JSON object"
        for name in settings.REQUIRED_FIELDS.get(method, ()):
            if not isinstance(answer.get(name), list):
                return f"answer without its {name!r} list (truncated or malformed page)"
        return None

    def limiter(self, method: str) -> tuple[SlidingWindowLimiter, float] | None:
        """Slack's tier for ``method``, per workspace token (see ``connectors.kit.limiter``)."""
        limit = settings.RATE_LIMITS[self._config.tier].get(method)
        if not limit or self._token is None:
            return None
        window = self._config.window_seconds()
        return shared_limiter("slack", self._token.reveal(), method, limit, window), 1.0

    def _note_warnings(
        self, method: str, params: Mapping[str, Any], data: Mapping[str, Any]
    ) -> None:
        """Record ``warning`` / ``response_metadata.warnings`` of a success, once per run each:
        Slack uses them for what it silently did differently (``already_in_channel``,
        ``superfluous_charset``), which someone reading the run summary may need to know."""
        found: list[str] = []
        if isinstance(data.get("warning"), str):
            found.extend(w.strip() for w in data["warning"].split(","))
        metadata = data.get("response_metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("warnings"), list):
            found.extend(str(w) for w in metadata["warnings"])
        where = f" (channel {params['channel']})" if params.get("channel") else ""
        for warning in dict.fromkeys(w for w in found if w):
            line = f"Slack {method}{where} warned: {warning}"
            if line not in self._warned:
                self._warned.add(line)
                self.stats.warnings.append(line)
