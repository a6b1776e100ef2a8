"""Opening a connect link lands on a page that says what will happen; nothing reaches the
provider until the person presses "Continue". The finding: another person who opened an
agency's link was sent straight to the consent screen and connected their own workspace into
that agency with no page naming it."""

from __future__ import annotations

import html

import sqlalchemy as sa

from db import schema
from tests.connect.conftest import ConnectWorld, continue_form
from tests.connect.test_connect_flows import seed_account

HOSTILE = "Globex <script>alert(1)</script> & Co"


def _rename_client(world: ConnectWorld, name: str) -> None:
    with world.engine.begin() as conn:
        conn.execute(
            sa.update(schema.client)
            .where(schema.client.c.id == world.clients["globex"])
            .values(name=name)
        )


def test_a_link_opens_a_page_naming_the_agency_the_asker_and_what_will_be_read(
    world: ConnectWorld,
) -> None:
    seed_account(world, "slack")
    _rename_client(world, HOSTILE)
    screens = world.sandbox.slack.consent.knobs.screens
    page = world.browser().get(world.link("slack", "admin", client="globex"))
    assert page.status_code == 200, page.text
    text = page.text
    # what the person needs to decide, by name (the seeded agency, user and client)
    for shown in ("Acme", "admin@acme.test", "Slack", "Continue to Slack"):
        assert shown in text, shown
    # the streams that will be synced and the bot scopes asked (docs/operations.md's table)
    for read in ("users", "channels", "messages", "channels:history", "users:read.email"):
        assert f"<li>{read}</li>" in text, read
    # every name is escaped: the hostile client name is text, not markup
    assert html.escape(HOSTILE, quote=True) in text and "<script>" not in text
    # nothing happened yet: no consent screen, no stored state, no cookie
    assert world.sandbox.slack.consent.knobs.screens == screens
    assert world.states() == 0 and "set-cookie" not in page.headers
    # a product page: the shared stylesheet, not framable, not cached
    assert 'rel="stylesheet" href="/connect/assets/page.css"' in text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    css = world.browser().get(f"{world.base}/connect/assets/page.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_continue_connects_and_the_result_names_the_agency_it_joined(
    world: ConnectWorld,
) -> None:
    team = seed_account(world, "slack")
    _rename_client(world, HOSTILE)
    browser = world.browser()
    page = world.open_link(browser, world.link("slack", client="globex"))
    assert page.status_code == 200, page.text
    [row] = world.integrations_of("slack")
    assert row.external_account_id == team
    assert "Slack connected to Acme" in page.text
    assert "of the agency Acme" in page.text
    assert f"#{row.id}" in page.text


def test_a_post_from_another_site_cannot_skip_the_page(world: ConnectWorld) -> None:
    seed_account(world, "slack")
    browser = world.browser()
    landing = browser.get(world.link("slack"))
    form = continue_form(landing)
    assert form is not None
    action, fields = form
    target = landing.url.join(action)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        answer = browser.post(target, data=fields, headers=headers, follow_redirects=False)
        assert answer.status_code == 403, answer.text
    assert world.states() == 0
    ours = world.base  # scheme://host:port, what a browser sends as Origin from our page
    answer = browser.post(
        target,
        data=fields,
        headers={"Origin": ours, "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(world.sandbox.env["AOS_SLACK_AUTHORIZE_URL"])
