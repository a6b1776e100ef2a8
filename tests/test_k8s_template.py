"""The Kubernetes work-pool template is valid JSON, uses every variable it declares, and takes
secrets from a Kubernetes Secret rather than plain values."""

from __future__ import annotations

import json
import re
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "deployments" / "k8s-base-job-template.json"


def test_template_variables_and_secrets() -> None:
    spec = json.loads(TEMPLATE.read_text())
    text = json.dumps(spec["job_configuration"])
    used = set(re.findall(r"\{\{ (\w+) \}\}", text))
    declared = set(spec["variables"]["properties"])
    assert used == declared, used ^ declared  # every variable declared is used, and back
    [container] = spec["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
        "containers"
    ]
    env = {e["name"]: e for e in container["env"]}
    for secret in ("AOS_DATABASE_URL", "AOS_ENCRYPTION_KEY", "AOS_RUN_GRANT_KEY"):
        assert "secretKeyRef" in env[secret]["valueFrom"] and "value" not in env[secret]
