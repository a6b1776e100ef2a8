"""Slack constants in one home: endpoints, rate tiers, error classes and lookback defaults.

Numbers here come from Slack's published limits (api.slack.com/apis/rate-limits and the 2025
change for non-Marketplace apps). Keeping them together means a tier change is one edit.
"""

from __future__ import annotations

from typing import Final

DEFAULT_API_URL: Final = "https://slack.com/api/"
API_URL_ENV: Final = "AOS_SLACK_API_URL"

TIERS: Final = ("tier3", "non_marketplace_2025", "unlimited")
# The tier of the deployment's Slack app, unless an integration's config names one. Since 29 May
# 2025 a newly created app that is distributed outside the Slack Marketplace gets the
# non-Marketplace limits on every install (docs.slack.dev/apis/web-api/rate-limits, "App types
# and rate limits"; changelog 2025-05-29 "Rate limit changes for non-Marketplace apps"): that
# is a new customer's app, so it is the default. ``tier3`` is for a Marketplace-approved app or
# an internal one built for a single workspace.
TIER_ENV: Final = "AOS_SLACK_TIER"
DEFAULT_TIER: Final = "non_marketplace_2025"
# What each tier allows conversations.history and conversations.replies (aos-sync status).
TIER_NOTES: Final[dict[str, str]] = {
    "tier3": "50 req/min",
    "non_marketplace_2025": "1 req/min, 15/page",
    "unlimited": "not paced",
}

# Requests per minute per (token, method). Tier 2 = 20/min, Tier 3 = 50/min.
_STANDARD_LIMITS: Final[dict[str, int]] = {
    "users.list": 20,
    "conversations.list": 20,
    "conversations.history": 50,
    "conversations.replies": 50,
    "conversations.info": 50,
    "conversations.join": 50,
}
# Since 2025, apps not in the Slack Marketplace get 1 request/min and 15 objects per page on
# conversations.history and conversations.replies; other methods keep their tier.
_NON_MARKETPLACE_LIMITS: Final[dict[str, int]] = {
    **_STANDARD_LIMITS,
    "conversations.history": 1,
    "conversations.replies": 1,
}
RATE_LIMITS: Final[dict[str, dict[str, int]]] = {
    "tier3": _STANDARD_LIMITS,
    "non_marketplace_2025": _NON_MARKETPLACE_LIMITS,
    "unlimited": {},
}
RATE_WINDOW_SECONDS: Final = 60.0
NON_MARKETPLACE_PAGE_LIMIT: Final = 15
PAGED_MESSAGE_METHODS: Final = frozenset({"conversations.history", "conversations.replies"})

# Errors meaning "a human must reconnect the workspace" -> AuthError.
AUTH_ERRORS: Final = frozenset(
    {"invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired"}
)
REFRESH_AUTH_ERRORS: Final = frozenset(
    {"invalid_refresh_token", "invalid_grant", "invalid_client_id", "bad_client_secret"}
)
# Errors about one channel that must never fail the whole run: skip it with a warning.
CHANNEL_SKIP_ERRORS: Final = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "method_not_supported_for_channel_type"}
)
# `ok: false` answers that are Slack having a bad moment, not a bad request.
TRANSIENT_ERRORS: Final = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)

# The list an ``ok: true`` answer of each paged method always carries (empty or not). An answer
# without it is damaged and retried: read as "no rows" it would end a listing early and let the
# listing's reconcile soft-delete live rows.
REQUIRED_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "users.list": ("members",),
    "conversations.list": ("channels",),
    "conversations.history": ("messages",),
    "conversations.replies": ("messages",),
}

# Request-level retries, all in the kit's retry loop (slack_sdk's own handlers are off):
# attempts a call may spend on failures (a damaged or lost answer always spends one), after
# extra ones for 429s (Slack asks to wait often and briefly; the wait is its Retry-After, or
# RATE_LIMIT_DEFAULT_WAIT seconds without one) and for 5xx / Slack's transient error codes.
CALL_ATTEMPTS: Final = 4
RATE_LIMIT_RETRIES: Final = 6
SERVER_ERROR_RETRIES: Final = 3
RATE_LIMIT_DEFAULT_WAIT: Final = 1.0
MAX_BACKOFF_SECONDS: Final = 30.0
REQUEST_TIMEOUT_SECONDS: Final = 30

# Lookbacks (days): edits/deletions are found by re-reading this window of each channel;
# threads are re-checked for parents this recent.
EDIT_LOOKBACK_DAYS: Final = 7
THREAD_LOOKBACK_DAYS: Final = 30
DEFAULT_PAGE_LIMIT: Final = 200
