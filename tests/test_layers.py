"""The one-way architecture: import-linter's layers contract holds, can fail, and DAG files stay light.

- the contract of ``[tool.importlinter]`` (pyproject.toml) is kept by the real tree;
- the same contract, on a synthetic tree where ``foundation`` imports ``credit``, is broken
  (so a passing run means something);
- the DAG files (``dags/``, not a package) import at parse time only Airflow, pendulum,
  datetime, ``credit.dag_common``, ``credit.airflow_env`` and ``foundation``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from foundation.settings import PROJECT_ROOT

pytestmark = pytest.mark.unit

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
ROOT_PACKAGES = ["foundation", "transforms", "warehouse", "expectations", "sample_city", "credit"]


def _lint_imports(cwd: Path, *args: str) -> tuple[int, str]:
    """Run the venv's lint-imports in ``cwd`` (its packages first on the path); (exit code, output)."""
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "1000", "NO_COLOR": "1"}
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return done.returncode, " ".join((done.stdout + done.stderr).split())  # rich wraps long lines


def _importlinter_section(pyproject: str) -> str:
    """The text of ``[tool.importlinter]`` and its ``[[tool.importlinter.contracts]]`` tables."""
    out: list[str] = []
    inside = False
    for line in pyproject.splitlines():
        if line.startswith("["):
            inside = line.strip("[]").startswith("tool.importlinter")
        if inside:
            out.append(line)
    while out and (not out[-1].strip() or out[-1].startswith("#")):
        out.pop()  # the comment of the next table
    return "\n".join(out) + "\n"


def test_the_real_tree_keeps_the_layers_contract():
    code, output = _lint_imports(PROJECT_ROOT)
    assert code == 0, output
    assert "KEPT" in output and "BROKEN" not in output, output


def test_the_contract_fails_on_an_upward_import(tmp_path):
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = _importlinter_section(pyproject)
    config = tomllib.loads(section)["tool"]["importlinter"]
    assert config == tomllib.loads(pyproject)["tool"]["importlinter"]  # the whole section, nothing else
    assert config["root_packages"] == ROOT_PACKAGES
    (tmp_path / "pyproject.toml").write_text(section, encoding="utf-8")
    for package in ROOT_PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "foundation" / "bad.py").write_text("import credit\n", encoding="utf-8")

    code, output = _lint_imports(tmp_path, "--no-cache")

    assert code != 0, output
    [contract] = config["contracts"]
    assert f"{contract['name']} BROKEN" in output, output
    assert "foundation.bad -> credit" in output, output


# --- DAG files: what they import at parse time ---------------------------------------------------

DAG_IMPORTS_ALLOWED = ("airflow", "pendulum", "datetime", "__future__", "credit.dag_common", "credit.airflow_env",
                       "foundation")


def _allowed(module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in DAG_IMPORTS_ALLOWED)


def _is_dag_function(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """``@dag`` / ``@dag(...)``: its body runs when the file is parsed (the DAG is built at module level)."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (isinstance(target, ast.Name) and target.id == "dag") or (
            isinstance(target, ast.Attribute) and target.attr == "dag"
        ):
            return True
    return False


def parse_time_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of each import not allowed at parse time: at module level (in a class or
    an ``if``/``try`` too) or in a ``@dag`` function's own body; a task's body runs later."""
    bad: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                if _is_dag_function(child):
                    visit(child)
            elif isinstance(child, ast.Lambda):
                continue
            elif isinstance(child, ast.Import):
                bad.extend((child.lineno, a.name) for a in child.names if not _allowed(a.name))
            elif isinstance(child, ast.ImportFrom):
                module = "." * child.level + (child.module or "")
                if child.level or not (
                    _allowed(module) or all(_allowed(f"{module}.{a.name}") for a in child.names)
                ):
                    bad.append((child.lineno, module))
            else:
                visit(child)

    visit(ast.parse(source))
    return bad


def test_the_import_check_sees_module_level_and_dag_bodies():
    source = '''
from __future__ import annotations
import pandas
from credit import dag_common, report
from foundation.catalog import get_catalog
if True:
    from warehouse.db import open_warehouse

@dag(schedule=None)
def d():
    import duckdb

    @task
    def t():
        import pyarrow
        from expectations.run import validate_batch

def helper():
    import great_expectations
'''
    assert parse_time_imports(source) == [(3, "pandas"), (4, "credit"), (7, "warehouse.db"), (11, "duckdb")]


@pytest.mark.parametrize("dag_file", sorted(p.name for p in (PROJECT_ROOT / "dags").glob("*.py")))
def test_dag_files_import_only_light_modules_at_parse_time(dag_file):
    source = (PROJECT_ROOT / "dags" / dag_file).read_text(encoding="utf-8")
    assert parse_time_imports(source) == [], f"dags/{dag_file}: move these imports into the task that needs them"
