"""Admin commands: agencies, users, clients, access grants, integrations, runs, analysts, keys."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cli.context import engine, integration_ref, vault
from cli.output import CliError, whole_number
from connectors import registry
from db import agencydb, readers, tenancy
from db.analyst import create_analyst, drop_analyst
from db.runs import list_runs

__all__ = ["register"]


def _agency_id(conn: Any, ref: str) -> int:
    return int(tenancy.find_agency(conn, ref).id)


def _client_id(conn: Any, agency_id: int, ref: str | None) -> int | None:
    return None if ref is None else tenancy.find_client(conn, agency_id, ref)


def _refresh(agency_id: int) -> None:
    """After a change of clients, grants or integrations: every analyst login of the agency
    reaches exactly what it now may (``db/readers.py``), from its next query on."""
    readers.refresh(engine(), agency_id)


def cmd_agency_create(a: argparse.Namespace) -> Any:
    with engine().begin() as conn:
        agency_id = tenancy.create_agency(conn, a.name)
    where = agencydb.provision(engine(), agency_id, a.database_url)
    return {"agency_id": agency_id, "name": a.name, "database": where.database}


def cmd_agency_delete(a: argparse.Namespace) -> Any:
    """Delete an agency and everything of it: its database is dropped, its users, clients,
    integrations and credentials go from the control database."""
    from db.analyst import drop_agency_logins

    eng = engine()
    with eng.connect() as conn:
        agency = tenancy.find_agency(conn, a.agency)
    if a.confirm != agency.name:
        raise CliError(
            f"to delete agency {agency.name!r} and all its data, pass --confirm with its name"
        )
    database = agencydb.drop_database(eng, agency.id)
    logins = drop_agency_logins(eng, agency.id)
    with eng.begin() as conn:
        tenancy.delete_agency(conn, agency.id)
    return {"deleted": agency.name, "database": database, "analyst_logins_dropped": logins}


def cmd_agency_move(a: argparse.Namespace) -> Any:
    """Move an agency's database to another server (or back), nothing lost."""
    from db.placement import move_agency

    eng = engine()
    with eng.connect() as conn:
        agency = tenancy.find_agency(conn, a.agency)
    return move_agency(eng, agency.id, a.database_url)


def cmd_user_add(a: argparse.Namespace) -> Any:
    with engine().begin() as conn:
        agency_id = _agency_id(conn, a.agency)
        uid = tenancy.add_user(conn, agency_id, a.email, a.role, name=a.name)
    return {"user_id": uid, "email": a.email.lower(), "role": a.role, "agency_id": agency_id}


def cmd_client_add(a: argparse.Namespace) -> Any:
    with engine().begin() as conn:
        agency_id = _agency_id(conn, a.agency)
        cid = tenancy.add_client(
            conn,
            agency_id,
            a.name,
            email_domains=a.email_domain,
            slack_channel_ids=a.slack_channel,
            ad_account_ids=a.ad_account,
        )
    _refresh(agency_id)
    return {"client_id": cid, "name": a.name, "agency_id": agency_id}


def cmd_access(a: argparse.Namespace) -> Any:
    with engine().begin() as conn:
        user = tenancy.find_user(conn, a.user)
        client_id = tenancy.find_client(conn, user.agency_id, a.client)
        if a.access_cmd == "grant":
            tenancy.grant_access(conn, user.id, client_id, a.permission)
        else:
            tenancy.revoke_access(conn, user.id, client_id)
    _refresh(user.agency_id)
    return {
        "user": user.email,
        "client_id": client_id,
        "permission": a.permission if a.access_cmd == "grant" else None,
    }


def _read_credentials(source: str) -> dict[str, Any]:
    """Credentials come from a file or stdin, never from argv (shell history, ps)."""
    if source == "-":
        if sys.stdin.isatty():  # not piped: say what the silence waits for
            print(
                "paste the credentials JSON, then press Ctrl-D on a line of its own",
                file=sys.stderr,
            )
        text = sys.stdin.read()
    else:
        text = Path(source).read_text()
    if not text.strip():
        where = "stdin" if source == "-" else f"file {source}"
        raise CliError(
            f"credentials: {where} is empty (expected a JSON object with an access_token)"
        )
    try:
        bundle = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"credentials must be a JSON object ({exc.msg} at line {exc.lineno})"
        ) from None
    if not isinstance(bundle, dict) or not bundle.get("access_token"):
        raise CliError("credentials must be a JSON object with at least an access_token")
    return bundle


def cmd_integration_add(a: argparse.Namespace) -> Any:
    bundle = _read_credentials(a.credentials_file)
    config = json.loads(a.config) if a.config else {}
    try:
        registry.get(a.provider).check_config(config)
    except registry.InvalidConfig as exc:
        raise CliError(f"--config: {exc}") from None
    v = vault()
    with engine().begin() as conn:
        agency_id = _agency_id(conn, a.agency)
        client_id = _client_id(conn, agency_id, a.client)
        iid = tenancy.add_integration(
            conn,
            agency_id,
            a.provider,
            a.name,
            client_id=client_id,
            external_account_id=a.external_id,
            config=config,
        )
        v.put(conn, iid, bundle)  # the vault reads expires_at from the bundle
    _refresh(agency_id)
    return {
        "integration_id": iid,
        "provider": a.provider,
        "name": a.name,
        "agency_id": agency_id,
        "client_id": client_id,
    }


def cmd_integration_reconnect(a: argparse.Namespace) -> Any:
    """New credentials for an existing integration (after needs_reauth); cursors are kept.
    The credentials are identified at the provider first: another account's are refused."""
    from db.rbac import Action, authorize
    from deployments.connect_service import ConnectRefused, reconnect_with_bundle

    bundle = _read_credentials(a.credentials_file)
    eng = engine()
    if a.as_:
        authorize(eng, a.as_, Action.ROTATE_CREDENTIALS, a.integration)
    with eng.connect() as conn:
        was = tenancy.get_integration(conn, a.integration).status
    try:
        done = reconnect_with_bundle(eng, vault(), a.integration, bundle, principal=a.as_ or "cli")
    except ConnectRefused as exc:
        raise CliError(str(exc)) from None
    return {
        "integration_id": done.integration_id,
        "name": done.name,
        "status": "connected",
        "was": was,
    }


def cmd_integration_disconnect(a: argparse.Namespace) -> Any:
    """Revoke at the provider, destroy the credential, disable; ``--purge`` deletes its rows."""
    from deployments.connect_service import disconnect

    done = disconnect(engine(), vault(), a.integration, a.as_, purge=a.purge)
    with engine().connect() as conn:
        _refresh(tenancy.get_integration(conn, a.integration).agency_id)
    return done


def cmd_integration_list(a: argparse.Namespace) -> Any:
    with engine().connect() as conn:
        agency_id = _agency_id(conn, a.agency) if a.agency else None
        rows = tenancy.list_integrations(conn, agency_id=agency_id, provider=a.provider)
    return [
        {
            "id": r.id,
            "agency_id": r.agency_id,
            "client_id": r.client_id,
            "provider": r.provider,
            "name": r.name,
            "status": r.status,
            "reason": r.status_reason,
        }
        for r in rows
    ]


def cmd_runs_list(a: argparse.Namespace) -> Any:
    with engine().connect() as conn:
        agency_id = _agency_id(conn, a.agency) if a.agency else None
        runs = list_runs(conn, agency_id=agency_id, integration_id=a.integration, limit=a.limit)
    return [
        {
            "id": r.id,
            "integration": r.integration_id,
            "provider": r.provider,
            "trigger": r.trigger,
            "principal": r.principal + ("" if r.principal_verified else " (unverified)"),
            "status": r.status,
            "started": r.started_at,
            "finished": r.finished_at,
            "rows": sum(
                int(s.get("inserted", 0)) + int(s.get("updated", 0))
                for s in r.streams.values()
                if isinstance(s, dict)
            ),
            "error": r.error,
        }
        for r in runs
    ]


def cmd_grant_mint(a: argparse.Namespace) -> Any:
    """Mint a single-use run grant. Whoever holds AOS_RUN_GRANT_KEY vouches for the person: run
    this only after authenticating them (authorize still decides what they may do)."""
    from datetime import timedelta

    from db.grants import ENV_KEY, mint_run_grant, signing_key_from_env

    key = signing_key_from_env()
    if key is None:
        raise CliError(f"{ENV_KEY} is not set: without it manual runs need no grant")
    if a.minutes < 1 or a.minutes > 60:
        raise CliError("--minutes must be between 1 and 60")
    token = mint_run_grant(key, a.as_, a.integration, a.action, ttl=timedelta(minutes=a.minutes))
    return {"grant": token, "use": "export AOS_RUN_GRANT=<grant>; valid once, for this run"}


def cmd_analyst_reset(a: argparse.Namespace) -> Any:
    from db.schema import analyst_binding, app_user

    with engine().connect() as conn:
        has_login = conn.execute(
            sa.select(analyst_binding.c.role_name)
            .join(app_user, app_user.c.id == analyst_binding.c.user_id)
            .where(app_user.c.email == a.user.lower())
        ).first()
    if has_login is None:
        raise CliError(f"{a.user} has no analyst login; create one with `aos-sync analyst create`")
    a.role_name = None
    return cmd_analyst_create(a)


def cmd_analyst_list(a: argparse.Namespace) -> Any:
    from db.schema import agency, analyst_binding, app_user

    query = (
        sa.select(
            analyst_binding.c.role_name.label("role"),
            app_user.c.email.label("user"),
            agency.c.name.label("agency"),
            analyst_binding.c.created_at.label("created"),
        )
        .join(app_user, app_user.c.id == analyst_binding.c.user_id)
        .join(agency, agency.c.id == analyst_binding.c.agency_id)
        .order_by(agency.c.name, app_user.c.email)
    )
    with engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def cmd_analyst_drop(a: argparse.Namespace) -> Any:
    drop_analyst(engine(), a.role)
    return {"dropped": a.role}


def cmd_analyst_create(a: argparse.Namespace) -> Any:
    eng = engine()
    role = create_analyst(eng, a.user, role_name=a.role_name)
    url = sa.make_url(agencydb.placement(eng, role.agency_id).url)
    from cli.logins import remember

    remember(eng.url, a.user, role.role_name, role.password)
    return {
        "role": role.role_name,
        "password": role.password,
        "agency_id": role.agency_id,
        "database": role.database,
        "psql": f"psql 'postgresql://{role.role_name}@{url.host}:{url.port}/{role.database}'",
        "note": "the password is shown once; set PGPASSWORD or answer psql's prompt "
        f"(`aos-sync export --as {a.user.lower()}` uses it from AOS_HOME)",
    }


def cmd_keys_rotate(a: argparse.Namespace) -> Any:
    return {"re_encrypted": vault().rotate(engine())}


def cmd_keys_generate(a: argparse.Namespace) -> Any:
    from db.vault import Keyring

    return {
        "key": Keyring.generate_key(),
        "use": "prepend it to AOS_ENCRYPTION_KEY (comma-separated), then `aos-sync keys rotate`",
    }


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the admin sub-commands to the top-level parser."""
    agency = sub.add_parser("agency", help="agencies (tenants)").add_subparsers(
        dest="sub", required=True
    )
    p = agency.add_parser("create", help="create an agency (and its own database)")
    p.add_argument("name")
    p.add_argument(
        "--database-url",
        help="the PostgreSQL server of the agency's database (default: the control database's "
        "server); the role in the URL needs CREATEDB and CREATEROLE there",
    )
    p.set_defaults(func=cmd_agency_create)
    p = agency.add_parser("delete", help="delete an agency: its database and all its rows")
    p.add_argument("agency", help="agency name or id")
    p.add_argument("--confirm", required=True, help="the agency's name, to confirm")
    p.set_defaults(func=cmd_agency_delete)
    p = agency.add_parser("move", help="move an agency's database to another server, or back")
    p.add_argument("agency", help="agency name or id")
    p.add_argument(
        "--database-url",
        help="the target server (omit: back to the control database's server)",
    )
    p.set_defaults(func=cmd_agency_move)

    user = sub.add_parser("user", help="users and roles").add_subparsers(dest="sub", required=True)
    p = user.add_parser("add", help="add a user with a role")
    p.add_argument("--agency", required=True, help="agency name or id")
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=["owner", "admin", "manager", "member"])
    p.add_argument("--name")
    p.set_defaults(func=cmd_user_add)

    client = sub.add_parser("client", help="an agency's clients").add_subparsers(
        dest="sub", required=True
    )
    p = client.add_parser("add", help="add a client")
    p.add_argument("--agency", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--email-domain", action="append", default=[], help="repeatable")
    p.add_argument(
        "--slack-channel", action="append", default=[], help="Slack channel id; repeatable"
    )
    p.add_argument("--ad-account", action="append", default=[], help="ad account id; repeatable")
    p.set_defaults(func=cmd_client_add)

    access = sub.add_parser("access", help="per-client grants").add_subparsers(
        dest="access_cmd", required=True
    )
    for verb in ("grant", "revoke"):
        p = access.add_parser(verb, help=f"{verb} a user's access to a client")
        p.add_argument("--user", required=True, help="email")
        p.add_argument("--client", required=True, help="client name or id")
        if verb == "grant":
            p.add_argument("--permission", required=True, choices=["read", "write"])
        else:
            p.set_defaults(permission=None)
        p.set_defaults(func=cmd_access)

    integ = sub.add_parser("integration", help="connected accounts").add_subparsers(
        dest="sub", required=True
    )
    p = integ.add_parser("add", help="add an integration; credentials from a file or stdin")
    p.add_argument("--agency", required=True)
    p.add_argument("--provider", required=True, choices=registry.names())
    p.add_argument("--name", required=True)
    p.add_argument("--client", help="client name or id (omit for agency-wide)")
    p.add_argument("--external-id")
    p.add_argument("--config", help="JSON object of per-integration settings")
    p.add_argument(
        "--credentials-file",
        required=True,
        metavar="PATH|-",
        help="JSON token bundle; '-' reads stdin (never pass tokens on the command line)",
    )
    p.set_defaults(func=cmd_integration_add)
    p = integ.add_parser(
        "reconnect",
        help="store new credentials for an integration "
        "(e.g. after needs_reauth) and mark it connected",
    )
    p.add_argument("--integration", type=integration_ref, metavar="ID|NAME", required=True)
    p.add_argument("--credentials-file", required=True, metavar="PATH|-")
    p.add_argument("--as", dest="as_", metavar="EMAIL", help="the acting user (RBAC-checked)")
    p.set_defaults(func=cmd_integration_reconnect)
    p = integ.add_parser(
        "disconnect",
        help="revoke the token at the provider, destroy the credential, mark it disabled",
    )
    p.add_argument("--integration", type=integration_ref, metavar="ID|NAME", required=True)
    p.add_argument("--as", dest="as_", required=True, metavar="EMAIL", help="the acting user")
    p.add_argument("--purge", action="store_true", help="also delete its synced rows and cursors")
    p.set_defaults(func=cmd_integration_disconnect)
    p = integ.add_parser("list", help="list integrations with status")
    p.add_argument("--agency")
    p.add_argument("--provider")
    p.set_defaults(func=cmd_integration_list)

    runs = sub.add_parser("runs", help="the sync run ledger").add_subparsers(
        dest="sub", required=True
    )
    p = runs.add_parser("list", help="recent sync runs")
    p.add_argument("--agency")
    p.add_argument("--integration", type=integration_ref, metavar="ID|NAME")
    p.add_argument("--limit", type=whole_number, default=30)
    p.set_defaults(func=cmd_runs_list)

    analyst = sub.add_parser("analyst", help="analyst database roles").add_subparsers(
        dest="sub", required=True
    )
    p = analyst.add_parser("create", help="create a psql login that sees only the user's rows")
    p.add_argument("--user", required=True, help="email of an existing user")
    p.add_argument(
        "--role-name",
        help="login name (default: analyst_<email>_<tag>, unique per user and database); an "
        "existing login of this user keeps its name and gets a new password",
    )
    p.set_defaults(func=cmd_analyst_create)
    p = analyst.add_parser("reset", help="a new password for the user's analyst login")
    p.add_argument("--user", required=True, help="email of the login's user")
    p.set_defaults(func=cmd_analyst_reset)
    analyst.add_parser("list", help="analyst logins and their users").set_defaults(
        func=cmd_analyst_list
    )
    p = analyst.add_parser("drop", help="drop an analyst login of this database")
    p.add_argument("--role", required=True, help="the login's role name")
    p.set_defaults(func=cmd_analyst_drop)

    grant = sub.add_parser("grant", help="run grants for manual runs").add_subparsers(
        dest="sub", required=True
    )
    p = grant.add_parser("mint", help="a single-use run grant (needs AOS_RUN_GRANT_KEY)")
    p.add_argument("--integration", type=integration_ref, metavar="ID|NAME", required=True)
    p.add_argument("--action", choices=["sync", "backfill"], default="sync")
    p.add_argument("--as", dest="as_", required=True, metavar="EMAIL", help="the acting user")
    p.add_argument("--minutes", type=whole_number, default=15, help="lifetime (1-60, default 15)")
    p.set_defaults(func=cmd_grant_mint)

    keys = sub.add_parser("keys", help="credential encryption keys").add_subparsers(
        dest="sub", required=True
    )
    keys.add_parser("rotate", help="re-encrypt every credential under the active key").set_defaults(
        func=cmd_keys_rotate
    )
    keys.add_parser("generate", help="print a new key for AOS_ENCRYPTION_KEY").set_defaults(
        func=cmd_keys_generate
    )
