"""The import contracts in pyproject.toml (import-linter): the apps are layered,
other apps reach a domain app only through its public modules, and inside an app
reads never call writes. The contracts are run for real, on this tree and on a
copy with a wrong-way import injected, so a contract that stops catching what it
is meant to catch fails here."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _contract(contract_id: str) -> dict:
    return next(c for c in CONFIG["contracts"] if c.get("id") == contract_id)


def _lint_imports(cwd: Path, *contract_ids: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).parent / "lint-imports"
    command = [str(executable) if executable.exists() else "lint-imports", "--no-cache", "--no-logo"]
    for contract_id in contract_ids:
        command += ["--contract", contract_id]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def _layer_modules(contract: dict) -> list[str]:
    return [name.strip().strip("()") for layer in contract["layers"] for name in layer.replace("|", ":").split(":")]


def test_the_tree_keeps_every_contract():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_app_of_the_project_has_its_place_in_the_layers():
    # Our apps are the top-level folders of the repository (a .venv inside it holds the others).
    ours = {config.name for config in apps.get_app_configs() if Path(config.path).parent == ROOT}
    layered = _layer_modules(_contract("layers"))
    assert ours | {"ops_site"} == set(layered) == set(CONFIG["root_packages"])
    # Every domain app (between core and the composition layer) states its public modules.
    composition = {"ops_site", "console", "dashboards"}
    domain = set(layered) - composition - {"core"}
    assert {c["id"] for c in CONFIG["contracts"] if c["id"].startswith("public-")} == {f"public-{a}" for a in domain}
    assert set(_contract("app-internals")["containers"]) == domain


WRONG_WAY = [
    # A lower app reaching up, even lazily inside a function.
    pytest.param(
        "users/selectors.py",
        "from segments.selectors import customer_ids_in",
        "layers",
        "users.selectors -> segments.selectors",
        id="users-imports-segments-lazily",
    ),
    pytest.param(
        "core/errors.py",
        "from users import selectors",
        "layers",
        "core.errors -> users.selectors",
        id="core-imports-users",
    ),
    pytest.param(
        "users/services.py",
        "from incentives.tasks import order_rules_apply_task",
        "layers",
        "users.services -> incentives.tasks",
        id="users-queues-an-incentives-task",
    ),
    # A sibling reaching past another app's selectors and services.
    pytest.param(
        "incentives/selectors.py",
        "from segments import views",
        "public-segments",
        "incentives.selectors -> segments.views",
        id="incentives-imports-segments-views",
    ),
    pytest.param(
        "segments/services/recompute.py",
        "from incentives import tasks",
        "public-incentives",
        "segments.services.recompute -> incentives.tasks",
        id="segments-imports-incentives-tasks",
    ),
    # Inside an app, a read calling a write.
    pytest.param(
        "incentives/selectors.py",
        "from .services import points_post",
        "app-internals",
        "incentives.selectors -> incentives.services",
        id="selector-imports-service",
    ),
]


@pytest.mark.parametrize(("path", "statement", "contract_id", "reported"), WRONG_WAY)
def test_a_wrong_way_import_breaks_its_contract(tmp_path, path, statement, contract_id, reported):
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert _lint_imports(tmp_path, contract_id).returncode == 0  # the copy is clean before the change
    target = tmp_path / path
    target.write_text(target.read_text() + f"\n\ndef _wrong_way():\n    {statement}\n")
    result = _lint_imports(tmp_path, contract_id)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and reported in result.stdout, result.stdout


def test_every_transactional_test_restores_the_migrated_data():
    """A ``transaction=True`` test flushes the database when it ends, taking the rows the
    migrations made (the role groups, display names) with it; with
    ``serialized_rollback=True`` they are put back for the next test. One without it
    breaks the tests that happen to run after it."""
    marks = re.compile(r"django_db\((?P<args>[^)]*transaction=True[^)]*)\)")
    missing = [
        f"{path.relative_to(ROOT)}: {m.group(0)}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for m in marks.finditer(path.read_text())
        if "serialized_rollback=True" not in m.group("args")
    ]
    assert missing == []
