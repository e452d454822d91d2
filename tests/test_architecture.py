"""The front's layering (docs/architecture.md), enforced with import-linter.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``): adapter/'s sub-packages form
layers, each importing only from the layers below it, and backends/ never imports adapter/.
import-linter reads every import statement, so a function-local or ``TYPE_CHECKING`` import
that runs upward breaks the contract as surely as a module-level one; the second test proves
it on a copy of the tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def _lint(cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` on the pyproject.toml in ``cwd``; ``extra_path`` goes first on the
    module search path (a copy of the packages shadows the installed ones)."""
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(no_cache=True))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_import_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        # config is below mapping: the shape of the old import circle.
        ("adapter/config/schema.py", "from adapter.mapping import build_mappers"),
        # http is below ops and the composition root.
        ("adapter/http/dashboard.py", "from adapter.app import create_app"),
        # the composition root is below the CLI.
        ("adapter/app.py", "from adapter.cli import main"),
        # drivers never reach into the front.
        ("backends/memory.py", "from adapter.config import Settings"),
    ],
)
def test_a_function_local_upward_import_breaks_the_contract(
    tmp_path: Path, module: str, upward: str
) -> None:
    for package in ("adapter", "backends"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(
        target.read_text(encoding="utf-8") + f"\n\ndef _late() -> None:\n    {upward}  # noqa\n",
        encoding="utf-8",
    )
    result = _lint(tmp_path, extra_path=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "1 broken" in result.stdout
    assert upward.split()[1] in result.stdout  # the report names the offending import
