"""Gmail constants in one home: endpoints, quota costs, retryable errors and fetch shapes.

Quota numbers are Google's published Gmail limits (per user: 250 quota units per second;
``messages.get`` and ``messages.list`` cost 5 units, ``history.list`` 2, label and profile
calls 1). Keeping them together means a limit change is one edit.
"""

from __future__ import annotations

from typing import Final

DEFAULT_API_URL: Final = "https://gmail.googleapis.com/"
API_URL_ENV: Final = "AOS_GMAIL_API_URL"
# The discovery document says ``batchPath: "batch"`` and BatchHttpRequest ignores
# ``api_endpoint``; Gmail's own batch endpoint is this path on the API host.
BATCH_PATH: Final = "batch/gmail/v1"
USER_ID: Final = "me"

# Per-user quota: units per second and the cost of each method we call.
QUOTA_UNITS_PER_SECOND: Final = 250.0
QUOTA_COST: Final[dict[str, int]] = {
    "users.getProfile": 1,
    "users.labels.list": 1,
    "users.labels.get": 1,
    "users.messages.list": 5,
    "users.messages.get": 5,
    "users.history.list": 2,
}

# Asked for explicitly: every kind of change matters to the table.
HISTORY_TYPES: Final = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")

MAX_BATCH_SIZE: Final = 100  # Google's hard limit per batch request (50 is the advice)
MAX_PAGE_SIZE: Final = 500  # messages.list / history.list maxResults ceiling
REQUEST_TIMEOUT_SECONDS: Final = 30
MAX_BACKOFF_SECONDS: Final = 64.0

# Headers we parse. With ``format=full`` Gmail ignores ``metadataHeaders``, so the list only
# documents intent; the ``fields`` mask below keeps bodies out of the response.
METADATA_HEADERS: Final = ("From", "To", "Cc", "Subject", "Date")
# ``format=metadata`` returns headers but no MIME parts, so it cannot tell whether a message
# has attachments. ``format=full`` with a partial-response mask returns the part tree (file
# names and attachment ids, four levels deep) without any body data.
_PART = "partId,mimeType,filename,body/attachmentId"
_PARTS = f"{_PART},parts({_PART},parts({_PART},parts({_PART})))"
MESSAGE_FIELDS: Final = (
    f"id,threadId,labelIds,snippet,historyId,internalDate,sizeEstimate,payload(headers,{_PARTS})"
)
LABEL_FIELDS: Final = "id,name,type,messagesTotal,messagesUnread,threadsTotal,threadsUnread"

# HTTP 403 reasons that mean "slow down", not "forbidden".
RATE_LIMIT_REASONS: Final = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "concurrentLimitExceeded"}
)
RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
AUTH_STATUSES: Final = frozenset({"UNAUTHENTICATED"})
AUTH_REASONS: Final = frozenset({"authError", "invalid_grant", "invalidCredentials"})

# Fields Gmail always sends in a successful answer of each method (``messages`` is omitted from
# an empty messages.list, ``resultSizeEstimate`` never is). An answer without them is damaged:
# it is retried, never read as an empty page.
REQUIRED_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "users.getProfile": ("historyId",),
    "users.labels.list": ("labels",),
    "users.labels.get": ("id",),
    "users.messages.list": ("resultSizeEstimate",),
    "users.messages.get": ("id", "historyId", "internalDate"),
    "users.history.list": ("historyId",),
}
