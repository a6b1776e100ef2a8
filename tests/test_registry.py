"""What derives from the provider registry stays in step with it: prefect.yaml (a real file that
`prefect deploy --all` reads), the command line's choices, the sandbox, the README's settings."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from cli.main import build_parser
from connectors import registry
from sandbox import known_providers

ROOT = Path(__file__).resolve().parent.parent


def _deployments() -> dict[str, dict[str, object]]:
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return {d["name"]: d for d in doc["deployments"]}


def test_prefect_yaml_lists_exactly_the_registrys_deployments() -> None:
    deployments = _deployments()
    expected = {"backfill"}
    for name in registry.names():
        entry = registry.get(name)
        expected |= {f"sync-all-{entry.slug}", f"sync-{entry.slug}"}
        scheduled = deployments[f"sync-all-{entry.slug}"]
        assert scheduled["entrypoint"] == "flows/dispatch.py:sync_all"
        assert scheduled["parameters"] == {"provider": name}
        assert [s["cron"] for s in scheduled["schedules"]] == [entry.schedule]  # type: ignore[union-attr]
        manual = deployments[f"sync-{entry.slug}"]
        assert manual["entrypoint"] == f"flows/providers.py:{entry.flow_name}"
    assert set(deployments) == expected
    assert deployments["backfill"]["entrypoint"] == "flows/backfill.py:backfill"


def test_every_entrypoint_loads_as_a_flow_with_the_right_name() -> None:
    from prefect.flows import load_flow_from_entrypoint

    for deployment in _deployments().values():
        entrypoint = str(deployment["entrypoint"])
        path, _, attribute = entrypoint.partition(":")
        flow = load_flow_from_entrypoint(f"{ROOT / path}:{attribute}")
        assert flow.name == attribute


def test_the_run_form_of_every_deployment_is_usable() -> None:
    """What the Prefect UI's "Run" form is made of (the flow's parameter schema): every
    parameter described and typed, who asks required for manual runs, nothing internal."""
    from prefect.flows import load_flow_from_entrypoint

    for deployment in _deployments().values():
        path, _, attribute = str(deployment["entrypoint"]).partition(":")
        schema = load_flow_from_entrypoint(f"{ROOT / path}:{attribute}").parameters.model_dump()
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{attribute}.{name} has no description"
            assert prop.get("type") or prop.get("anyOf"), f"{attribute}.{name} has no type"
        assert "trigger" not in schema["properties"]
        if attribute != "sync_all":
            assert {"integration_id", "requested_by"} <= set(schema["required"]), attribute
            assert schema["properties"]["requested_by"]["type"] == "string"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_command_line_and_sandbox_offer_exactly_the_registered_providers() -> None:
    sync = _subcommands(build_parser())["sync"]
    assert sorted(set(_subcommands(sync)) - {"all"}) == registry.names()
    assert known_providers() == registry.names()


def test_readme_documents_every_provider_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for setting in registry.settings():
        assert f"`{setting.env}`" in readme, setting.env
        assert setting.default in readme, (setting.env, setting.default)


@pytest.mark.parametrize("name", registry.names())
def test_each_emulator_sets_only_its_providers_settings(name: str) -> None:
    entry = registry.get(name)
    env = entry.make_emulator(seed=1, time_scale=1.0).env("http://127.0.0.1:9")
    assert env and set(env) <= {s.env for s in entry.settings}


def test_every_deployment_description_names_its_schedule() -> None:
    """The UI shows a deployment's schedules as a bare badge; its description says them."""
    for name, deployment in _deployments().items():
        description = str(deployment["description"])
        crons = [s["cron"] for s in deployment.get("schedules") or []]  # type: ignore[attr-defined]
        if crons:
            assert all(f"cron {c}" in description for c in crons), (name, description)
        else:
            assert description.startswith("Manual, no schedule"), (name, description)


@pytest.mark.parametrize("name", registry.names())
def test_each_entrys_streams_are_its_packages_streams(name: str) -> None:
    """The registry's stream list (the sync order, what the command line and backfills
    offer) and the package's ``STREAMS`` declarations name the same streams, in that order."""
    import importlib

    entry = registry.get(name)
    package = entry.reader.partition(":")[0].rsplit(".", 1)[0]
    declared = importlib.import_module(f"{package}.streams").STREAMS
    assert tuple(declared) == entry.streams
    assert all(declared[s].name == s for s in declared)
