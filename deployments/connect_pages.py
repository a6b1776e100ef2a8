"""The pages a person sees while connecting an account: one template and one stylesheet.

Every page is :func:`render` over plain strings; each one is HTML-escaped here, so an agency,
client or workspace named ``<script>`` shows as text. Pages are never cached, never send their
URL as a referrer (a callback URL holds the code), may not be framed (the "Continue" button
cannot be clickjacked) and load nothing but the stylesheet (``Content-Security-Policy``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

__all__ = ["HEADERS", "STYLESHEET_PATH", "Button", "render", "stylesheet_route"]

STYLESHEET_PATH = "/connect/assets/page.css"
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

_CSS = """\
:root { color-scheme: light; --ink: #1d2433; --muted: #5b6478; --line: #e3e6ee;
  --accent: #3553d4; --ok: #1d7a4a; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6fb; color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { padding: 18px 28px; font-weight: 600; letter-spacing: .02em; color: var(--muted); }
header b { color: var(--ink); }
main { max-width: 560px; margin: 24px auto 64px; background: #fff; border: 1px solid var(--line);
  border-radius: 12px; padding: 28px 32px; box-shadow: 0 1px 3px rgba(20, 30, 60, .06); }
h1 { font-size: 22px; margin: 0 0 12px; }
main.ok h1 { color: var(--ok); }
main.error h1 { color: var(--bad); }
p { margin: 0 0 14px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 8px 18px; margin: 18px 0;
  padding: 16px 0; border-top: 1px solid var(--line); border-bottom: 1px solid var(--line); }
dt { color: var(--muted); }
dd { margin: 0; font-weight: 500; overflow-wrap: anywhere; }
ul { margin: 0; padding-left: 18px; }
.note { color: var(--muted); font-size: 14px; }
form { margin: 22px 0 4px; }
button { background: var(--accent); color: #fff; border: 0; border-radius: 8px;
  padding: 11px 20px; font: inherit; font-weight: 600; cursor: pointer; }
button:hover { filter: brightness(1.08); }
"""


@dataclass(frozen=True)
class Button:
    """A form that POSTs ``fields`` to ``action``: a person's deliberate next step."""

    label: str
    action: str
    fields: tuple[tuple[str, str], ...] = ()


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render(
    title: str,
    lead: str,
    *,
    facts: Sequence[tuple[str, str | Sequence[str]]] = (),
    notes: Sequence[str] = (),
    button: Button | None = None,
    tone: str = "info",
    status: int = 200,
) -> HTMLResponse:
    """The page: a heading, a sentence, label/value facts (a value may be a list), notes in
    small print and at most one button. ``tone``: ``info``, ``ok`` or ``error``."""
    parts = [f"<h1>{_e(title)}</h1>", f"<p>{_e(lead)}</p>"]
    if facts:
        rows = []
        for label, value in facts:
            shown = (
                _e(value)
                if isinstance(value, str)
                else "<ul>" + "".join(f"<li>{_e(v)}</li>" for v in value) + "</ul>"
            )
            rows.append(f"<dt>{_e(label)}</dt><dd>{shown}</dd>")
        parts.append("<dl>" + "".join(rows) + "</dl>")
    if button is not None:
        hidden = "".join(
            f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in button.fields
        )
        parts.append(
            f'<form method="post" action="{_e(button.action)}">{hidden}'
            f'<button type="submit">{_e(button.label)}</button></form>'
        )
    parts.extend(f'<p class="note">{_e(n)}</p>' for n in notes)
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · AudienceOS Sync</title>"
        f'<link rel="stylesheet" href="{STYLESHEET_PATH}"></head><body>'
        "<header><b>AudienceOS</b> Sync · connect an account</header>"
        f'<main class="{_e(tone)}">' + "".join(parts) + "</main></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)


async def _stylesheet(request: Request) -> Response:
    return Response(
        _CSS,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def stylesheet_route() -> Route:
    """``GET`` :data:`STYLESHEET_PATH`, for every app that renders these pages."""
    return Route(STYLESHEET_PATH, _stylesheet)
