"""The build installs the same way twice: what the code imports is declared, what is declared is
pinned with hashes in requirements.lock, and the tools that judge the code are pinned exactly.

A package that arrives only through another one (as cronsim, starlette, uvicorn, grpcio,
httplib2 and google-auth-httplib2 did) disappears the day that one stops needing it, so every
import is checked against pyproject.toml; the lock is checked against pyproject.toml so that
editing one without the other (and not running ``python3 run.py lock``) fails here."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
PACKAGES = [p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]
#: Namespace packages several distributions share: the next name decides (google.auth ...).
NAMESPACES = {"google"}
#: The environments the lock must serve: CI's Python on Linux, and the range README states.
TARGETS = [
    {"python_version": v, "python_full_version": f"{v}.0", "sys_platform": "linux"}
    for v in ("3.11", "3.12", "3.13")
]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(folder: Path) -> Iterator[tuple[str, Path]]:
    """(dotted module imported, file) for every absolute import anywhere in the folder's code,
    inside functions too (a lazy import is still a dependency)."""
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                yield from ((alias.name, path) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.module, path


@cache
def _namespace_owners() -> dict[str, set[str]]:
    """``google.ads`` -> {"google-ads"}: which distribution installs each namespace subpackage."""
    owners: dict[str, set[str]] = {}
    sharing = {d for ns in NAMESPACES for d in _top_level_owners().get(ns, [])}
    for name in sharing:
        for file in metadata.distribution(name).files or []:
            parts = file.parts
            if len(parts) > 2 and parts[0] in NAMESPACES:
                owners.setdefault(f"{parts[0]}.{parts[1]}", set()).add(_normal(name))
    return owners


def _distributions(module: str) -> set[str]:
    top = module.split(".")[0]
    if top in NAMESPACES:
        return _namespace_owners().get(".".join(module.split(".")[:2]), set())
    # Not installed here (an optional extra such as bench's dlt): the import's own name.
    return {_normal(d) for d in _top_level_owners().get(top, [top])}


@cache
def _top_level_owners() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _declared(*extras: str) -> set[str]:
    requirements = list(PROJECT["dependencies"])
    for extra in extras:
        requirements += PROJECT["optional-dependencies"][extra]
    return {_normal(Requirement(r).name) for r in requirements}


def _first_party() -> set[str]:
    local = {p.stem for p in (ROOT / "tests").rglob("*.py")}  # rootdir-imported test helpers
    scripts = {p.stem for p in ROOT.glob("*.py")}  # run.py
    return {*PACKAGES, "bench", "tests", *local, *scripts}


def _undeclared(folder: Path, declared: set[str]) -> list[str]:
    missing = []
    for module, path in _imports(folder):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in _first_party():
            continue
        owners = _distributions(module)
        if not owners & declared:
            where = path.relative_to(ROOT)
            missing.append(f"{where}: {module} ({', '.join(sorted(owners)) or 'not installed'})")
    return sorted(set(missing))


@pytest.mark.parametrize(
    ("folders", "extras"),
    [(PACKAGES, ()), (["bench"], ("bench",)), (["tests"], ("dev",))],
    ids=["project", "bench", "tests"],
)
def test_every_import_is_declared(folders: list[str], extras: tuple[str, ...]) -> None:
    declared = _declared(*extras)
    missing = [m for folder in folders for m in _undeclared(ROOT / folder, declared)]
    assert not missing, "imported but not declared in pyproject.toml:\n" + "\n".join(missing)


def test_the_judges_are_pinned_exactly() -> None:
    """ruff and mypy: a new release must not fail CI (or pass it) with no change of ours."""
    dev = {Requirement(r).name: Requirement(r) for r in PROJECT["optional-dependencies"]["dev"]}
    for tool in ("ruff", "mypy"):
        (spec,) = dev[tool].specifier
        assert spec.operator == "==", f"{tool} is not pinned exactly: {dev[tool]}"


def _lock() -> list[tuple[Requirement, list[str]]]:
    """Each requirement of requirements.lock with its hashes."""
    text = (ROOT / "requirements.lock").read_text()
    entries = []
    for block in re.split(r"\n(?=\S)", text):
        lines = [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            continue
        joined = " ".join(ln.rstrip("\\ ").strip() for ln in lines)
        head, *hashes = joined.split(" --hash=")
        entries.append((Requirement(head.strip()), hashes))
    return entries


def test_every_locked_release_is_exact_and_hashed() -> None:
    entries = _lock()
    assert len(entries) > 50
    for req, hashes in entries:
        (spec,) = req.specifier
        assert spec.operator == "==", f"not an exact version in requirements.lock: {req}"
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), req


@pytest.mark.parametrize("target", TARGETS, ids=[t["python_version"] for t in TARGETS])
def test_the_lock_satisfies_pyproject(target: dict[str, str]) -> None:
    """Every runtime and dev requirement, for each supported Python on Linux, has one release
    in the lock that it accepts (run ``python3 run.py lock`` after editing pyproject.toml)."""
    locked: dict[str, list[Version]] = {}
    for req, _ in _lock():
        if req.marker is None or req.marker.evaluate(target):
            locked.setdefault(_normal(req.name), []).append(Version(str(*req.specifier)[2:]))
    wanted = [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["dev"]]
    problems = []
    for line in wanted:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(target):
            continue
        versions = locked.get(_normal(req.name), [])
        if len(versions) != 1 or versions[0] not in req.specifier:
            problems.append(f"{req} -> requirements.lock has {versions or 'nothing'}")
    assert not problems, "\n".join(problems)


def test_pgserver_only_where_it_has_wheels() -> None:
    """The embedded PostgreSQL fallback exists for Python < 3.13 only: README says so, and the
    lock does not ask pip for it elsewhere."""
    (pgserver,) = [r for r, _ in _lock() if r.name == "pgserver"]
    assert pgserver.marker is not None
    assert not pgserver.marker.evaluate(TARGETS[-1]) and pgserver.marker.evaluate(TARGETS[0])
    readme = (ROOT / "README.md").read_text()
    assert "Python 3.11 or 3.12" in readme and "3.13" in readme
