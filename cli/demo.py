"""``aos-sync demo``: the main job on a machine with no accounts and no services.

Starts the provider sandbox (every registered provider's emulator) and the embedded PostgreSQL,
seeds two agencies (two clients each, users in every role, and per agency: Slack workspaces
agency-wide and per client, a Gmail mailbox, a Meta business plus a client's own ad account, a
Google Ads manager tree plus a client's own account), runs ``sync_all`` under Prefect, then
prints rows per agency and provider, two queries of the ``analytics`` views as a member analyst
and where to look next. Seeding is idempotent and the sandbox is deterministic (same seed, same
day), so a second run is an incremental sync of unchanged data.

The demo may share a database with real accounts (the same embedded ``./.aos`` cluster), and it
points every ``AOS_*_API_URL`` of this process at the emulators. So it touches only the
integrations it created, which it marks ``config["sandbox"] = true``: ``sync_all`` gets their
ids, nothing else is synced (a real token would otherwise be sent to the emulator, refused, and
the real integration marked ``needs_reauth``), and a same-named integration without the mark is
refused rather than having its credentials overwritten.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cli.context import engine as project_engine
from cli.demo_plan import SANDBOX_MARK, SIZES, plan_agency
from cli.output import CliError
from cli.sandbox import SANDBOX_TIME_SCALE
from db import tenancy
from db.analyst import create_analyst
from db.engine import default_vault

__all__ = ["DEMO_AGENCIES", "register", "run_demo"]

DEMO_AGENCIES = (
    ("Northwind Agency", "northwind", ("Contoso", "Fabrikam")),
    ("Bluebird Media", "bluebird", ("Globex", "Initech")),
)
ROLES = ("owner", "admin", "manager", "member")


@dataclass
class DemoAgency:
    id: int
    name: str
    slug: str
    member_email: str
    integration_ids: list[int]


def _find_or(create: Any, find: Any) -> Any:
    try:
        return find()
    except tenancy.NotFound:
        return create()


def seed(
    conn: sa.Connection,
    sandbox: Any,
    size: str,
    agencies_to_seed: Sequence[tuple[str, str, tuple[str, ...]]] = DEMO_AGENCIES,
    providers: Collection[str] | None = None,
) -> list[DemoAgency]:
    """Create (or find) the demo tenants and point their integrations at ``sandbox`` (every
    provider's, or ``providers``' only)."""
    vault = default_vault()
    agencies = []
    for name, slug, client_names in agencies_to_seed:
        agency_id = _find_or(
            lambda n=name: tenancy.create_agency(conn, n),
            lambda n=name: tenancy.find_agency(conn, n).id,
        )
        clients, plans = plan_agency(sandbox, name, slug, client_names, size, providers)
        client_ids = {
            c.name: _find_or(
                lambda c=c, a=agency_id: tenancy.add_client(
                    conn,
                    a,
                    c.name,
                    email_domains=c.email_domains,
                    slack_channel_ids=c.slack_channel_ids,
                    ad_account_ids=c.ad_account_ids,
                ),
                lambda c=c, a=agency_id: tenancy.find_client(conn, a, c.name),
            )
            for c in clients
        }
        for role in ROLES:
            email = f"{role}@{slug}.test"
            _find_or(
                lambda e=email, r=role, a=agency_id: tenancy.add_user(conn, a, e, r),
                lambda e=email: tenancy.find_user(conn, e),
            )
        # The member works for the second client: its own Slack workspace, Meta and Google Ads
        # accounts are its integrations (agency-wide ones are manager-and-above).
        member = tenancy.find_user(conn, f"member@{slug}.test")
        tenancy.grant_access(conn, member.id, client_ids[client_names[1]], "write")
        existing = {i.name: i for i in tenancy.list_integrations(conn, agency_id=agency_id)}
        ids = []
        for plan in plans:
            found = existing.get(plan.name)
            if found is not None:
                if found.config.get(SANDBOX_MARK) is not True:
                    raise CliError(
                        f"agency {name!r} already has an integration {plan.name!r} "
                        f"(id {found.id}) that the demo did not create; the demo will not "
                        "overwrite its credentials. Rename it, or run the demo against a "
                        "database of its own (AOS_HOME or AOS_DATABASE_URL)"
                    )
                iid = found.id
                if found.status != "connected":
                    tenancy.set_integration_status(conn, iid, "connected", actor="demo")
            else:
                iid = tenancy.add_integration(
                    conn,
                    agency_id,
                    plan.provider,
                    plan.name,
                    client_id=client_ids[plan.client] if plan.client else None,
                    external_account_id=plan.external_id,
                    config=plan.config,
                )
            vault.put(conn, iid, dict(plan.credentials))
            ids.append(iid)
        agencies.append(DemoAgency(agency_id, name, slug, member.email, ids))
    return agencies


def _provider_tables() -> dict[str, list[str]]:
    """Every provider's tables, from the schema (``slack_messages`` is Slack's, ...)."""
    from connectors import registry
    from db.schema import agency_metadata as metadata

    prefixes = {
        "slack": "slack_",
        "gmail": "gmail_",
        "meta_ads": "meta_",
        "google_ads": "google_ads_",
    }
    tables: dict[str, list[str]] = {}
    for provider in registry.names():
        prefix = prefixes.get(provider, f"{provider}_")
        tables[provider] = sorted(t for t in metadata.tables if t.startswith(prefix))
    return tables


def _summary(eng: sa.Engine, agencies: list[DemoAgency]) -> None:
    from db.agencydb import engine_for

    tables = _provider_tables()
    with eng.connect() as conn:
        for agency in agencies:
            print(f"\n  {agency.name} (agency {agency.id})")
            with engine_for(eng, agency.id).connect() as data:
                for provider, names in tables.items():
                    counts = []
                    for table in names:
                        n = data.execute(
                            sa.text(
                                f"SELECT count(*) FROM {table} WHERE agency_id = :a AND deleted_at IS NULL"  # noqa: S608 - names from the schema
                            ),
                            {"a": agency.id},
                        ).scalar()
                        counts.append(f"{table} {n:,}")
                    print(f"    {provider:<11} " + ", ".join(counts))
            runs = conn.execute(
                sa.text(
                    "SELECT count(*), count(*) FILTER (WHERE status = 'failed') FROM sync_run "
                    "WHERE agency_id = :a"
                ),
                {"a": agency.id},
            ).one()
            print(f"    {'sync runs':<11} {runs[0]:,} ({runs[1]} failed)")


def _demo_analyst(eng: sa.Engine, email: str) -> Any:
    """The member's analyst login, with the same password on every run (``cli/logins.py``),
    so the psql line an earlier run printed keeps working."""
    import secrets

    from cli.logins import recall, remember

    known = recall(eng.url, email)
    password = known[1] if known else secrets.token_urlsafe(18)
    role = create_analyst(eng, email, password=password)
    remember(eng.url, email, role.role_name, password)
    return role


ANALYST_QUERIES = (
    (
        "Paid media per platform and client (Google Ads and Meta in one view; every campaign, "
        "Performance Max at campaign level)",
        "SELECT platform, client_name, currency, sum(impressions)::bigint AS impressions, "
        "sum(clicks)::bigint AS clicks, sum(spend) AS spend, sum(conversions) AS conversions "
        "FROM ad_performance_daily GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    ),
    (
        "Conversations per client (Slack and Gmail)",
        "SELECT client_name, sum(slack_messages)::int AS slack, sum(gmail_inbound)::int AS mail_in, "
        "sum(gmail_outbound)::int AS mail_out, max(last_activity_at) AS latest "
        "FROM client_activity_daily GROUP BY 1 ORDER BY 1",
    ),
)


def _analyst_example(eng: sa.Engine, agency: DemoAgency) -> dict[str, Any]:
    import pandas as pd

    from db.agencydb import placement

    role = _demo_analyst(eng, agency.member_email)
    url = sa.make_url(placement(eng, agency.id).url).set(
        username=role.role_name, password=role.password
    )
    print(
        f"\n==> Analyst queries, as {agency.member_email} (a member with write on one client;"
        " the agency's own database, and only that client's partitions in it):"
    )
    analyst = sa.create_engine(url)
    try:
        with analyst.connect() as conn:
            for title, query in ANALYST_QUERIES:
                frame = pd.read_sql(sa.text(query), conn)
                print(f"\n    -- {title}\n    {query}\n")
                print("    " + frame.to_string(index=False).replace("\n", "\n    "))
    finally:
        analyst.dispose()
    return {
        "role": role.role_name,
        "password": role.password,
        "host": url.host,
        "port": url.port,
        "database": url.database,
    }


def run_demo(size: str = "default", seed_value: int = 2026, verbose: int = 0) -> dict[str, Any]:
    from cli.sync import prefect_env

    ui = prefect_env()
    from sandbox import Sandbox

    began = time.monotonic()
    eng = project_engine()
    print(f"==> PostgreSQL: {eng.url.render_as_string(hide_password=True)} (migrated)")
    if ui:
        print(f"==> Prefect: {ui} (a local server, reused by later commands)")
    from connectors import registry

    providers = tuple(registry.names())
    with (
        Sandbox(providers, seed=seed_value, time_scale=SANDBOX_TIME_SCALE) as sb,
        _pointed_at(sb.env),
    ):
        with eng.begin() as conn:
            agencies = seed(conn, sb, size)
        ids = [i for agency in agencies for i in agency.integration_ids]
        print(
            f"==> Sandbox up ({', '.join(providers)} emulators on 127.0.0.1); "
            f"{len(agencies)} agencies, {len(ids)} integrations; sync_all under Prefect, one "
            "line per integration:",
            flush=True,
        )
        from cli.console import run_output
        from flows import sync_all
        from tasks.run import DispatchFailed

        # Only the demo's own integrations: every provider URL now leads to the sandbox.
        with run_output(verbose) as logs:
            try:
                outcomes = sync_all(integration_ids=ids)
            except DispatchFailed as exc:  # the summary below says which and why
                outcomes = exc.outcomes
    failed = [o for o in outcomes if o["outcome"] == "failed"]
    print(
        f"\n==> Synced {len(outcomes)} integrations, {len(failed)} failed, in "
        f"{time.monotonic() - began:.0f} s"
    )
    for o in failed:
        print(f"    integration {o['integration']} ({o['name']}): {o['error']}")
    _summary(eng, agencies)
    login = _analyst_example(eng, agencies[0])
    print("\n==> Next")
    where = ui or "the configured Prefect API's UI (PREFECT_API_URL)"
    print(f"    Prefect UI on these runs:  {where}   (stopped by `aos-sync db stop`)")
    if logs is not None:
        print(f"    every log line of the runs: {logs}")
    print(
        f"    psql as that analyst:      PGPASSWORD={login['password']} psql -h {login['host']} "
        f"-p {login['port']} -U {login['role']} {login['database']}"
    )
    print(
        "    ledger and status:         .venv/bin/aos-sync runs list; "
        ".venv/bin/aos-sync integration list"
    )
    print("    run it again: the second run is incremental.")
    return {"integrations": len(outcomes), "failed": len(failed), "outcomes": outcomes}


@contextlib.contextmanager
def _pointed_at(env: dict[str, str]) -> Iterator[None]:
    """``env`` (the sandbox's ``AOS_*_API_URL``) for the demo's duration, then what was there:
    nothing run later in this process should still be talking to a stopped emulator."""
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="sandbox + embedded PostgreSQL + every sync, then a summary")
    p.add_argument("--size", choices=sorted(SIZES), default="default")
    p.add_argument("--seed", type=int, default=2026)
    p.set_defaults(func=lambda a: _exit_code(run_demo(a.size, a.seed, a.verbose)))


def _exit_code(result: dict[str, Any]) -> None:
    if result["failed"]:
        raise RuntimeError(f"{result['failed']} of {result['integrations']} integrations failed")
