"""``aos-sync serve``: every deployment of prefect.yaml in this one process (``prefect.serve``).

For a single machine with no work pool: schedules fire, UI "Run" buttons work, and runs execute
here. prefect.yaml stays the one list of deployments; this module only reads it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["load_deployments", "serve_all"]

ROOT = Path(__file__).resolve().parent.parent


def _project_file() -> Path:
    base = Path(os.environ.get("AOS_PROJECT_DIR") or ROOT)
    path = base / "prefect.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no prefect.yaml in {base} (set AOS_PROJECT_DIR to the checkout)")
    return path


def _flow(entrypoint: str) -> Any:
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def load_deployments(path: Path | None = None) -> list[Any]:
    """RunnerDeployments for every entry of prefect.yaml (schedules and parameters included)."""
    spec = yaml.safe_load((path or _project_file()).read_text())
    deployments = []
    for entry in spec["deployments"]:
        crons = [s["cron"] for s in entry.get("schedules") or [] if "cron" in s]
        deployments.append(
            _flow(entry["entrypoint"]).to_deployment(
                name=entry["name"],
                description=entry.get("description"),
                parameters=entry.get("parameters") or {},
                cron=crons or None,
            )
        )
    return deployments


def serve_all(limit: int | None = None) -> None:
    from prefect import serve

    deployments = load_deployments()
    print(
        f"serving {len(deployments)} deployments: "
        + ", ".join(f"{d.flow_name}/{d.name}" for d in deployments),
        flush=True,
    )
    serve(*deployments, limit=limit)
