"""What the build installs: pyproject.toml's ranges, the lock files, the Dockerfile.

* The lock files (``requirements/*.txt``, written by ``bash requirements/lock.sh``) must agree
  with ``pyproject.toml``: every declared dependency pinned at a version its range allows, on
  every supported Python, and nothing pinned as a direct dependency that is no longer declared.
  A dependency added to pyproject without regenerating the locks fails here.
* Every package the code imports is declared.
* The Dockerfile cannot be built here (no engine), so what can be checked without one is: the
  files it copies exist and are not excluded by ``.dockerignore``, the locked dependencies are
  installed before any source file is copied (layer order), the data directory is a volume and
  the working directory, and the health check is a command of the CLI.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from adapter.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "enginy-crm-adapter"
#: The Python versions we support and the locks cover.
PYTHONS = ("3.11", "3.12", "3.13")
#: Platforms the locks are checked on (Docker's, and the two desktop ones).
PLATFORMS = ("linux", "darwin", "win32")


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def declared(extras: tuple[str, ...] | None) -> list[Requirement]:
    """The core dependencies plus those of ``extras`` (None: every extra), the project's own
    extras (``enginy-crm-adapter[test]``) expanded."""
    project = pyproject()["project"]
    assert isinstance(project, dict)
    optional: dict[str, list[str]] = project["optional-dependencies"]
    wanted = list(optional) if extras is None else list(extras)
    found: list[Requirement] = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in optional[extra]:
            req = Requirement(line)
            if canonicalize_name(req.name) == PROJECT:
                wanted.extend(req.extras)
            else:
                found.append(req)
    return found


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: Marker | None
    hashes: int
    via_project: bool


def read_lock(path: Path) -> dict[str, list[Pin]]:
    """``name -> pins`` of a ``uv pip compile`` output (a name may be pinned twice, under
    exclusive markers)."""
    pins: dict[str, list[Pin]] = {}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", path.read_text())
    for block in blocks:
        first = block.split("\\", 1)[0].strip()
        if not first or first.startswith("#"):
            continue
        requirement, _, marker = first.partition(";")
        name, _, version = requirement.strip().partition("==")
        assert version, f"{path.name}: {first!r} is not pinned with =="
        via = block.split("# via", 1)[1] if "# via" in block else ""
        pin = Pin(
            name=canonicalize_name(name),
            version=Version(version.strip()),
            marker=Marker(marker.strip()) if marker.strip() else None,
            hashes=block.count("--hash=sha256:"),
            via_project=f"{PROJECT} (pyproject.toml)" in via,
        )
        pins.setdefault(pin.name, []).append(pin)
    return pins


def environments() -> Iterator[dict[str, str]]:
    for python in PYTHONS:
        for platform in PLATFORMS:
            yield {
                "python_version": python,
                "python_full_version": f"{python}.0",
                "sys_platform": platform,
                "platform_system": {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[
                    platform
                ],
                "os_name": "nt" if platform == "win32" else "posix",
                "platform_python_implementation": "CPython",
                "implementation_name": "cpython",
                "platform_machine": "x86_64",
                "extra": "",
            }


LOCKS = {
    # file: the extras it installs (None: all of them)
    "runtime.txt": ("postgresql", "mysql", "redis"),
    "dev.txt": None,
}


@pytest.mark.parametrize("lock", list(LOCKS))
def test_lock_pins_every_declared_dependency_within_its_range(lock: str) -> None:
    pins = read_lock(ROOT / "requirements" / lock)
    stale = "; run `bash requirements/lock.sh` after changing pyproject.toml"
    for env in environments():
        for req in declared(LOCKS[lock]):
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonicalize_name(req.name)
            live = [p for p in pins.get(name, []) if p.marker is None or p.marker.evaluate(env)]
            assert live, f"{lock}: {req} is not pinned for {env['python_version']}{stale}"
            for pin in live:
                assert req.specifier.contains(pin.version, prereleases=True), (
                    f"{lock}: {name}=={pin.version} is outside {req}{stale}"
                )


@pytest.mark.parametrize("lock", list(LOCKS))
def test_lock_has_no_direct_dependency_that_pyproject_dropped(lock: str) -> None:
    pins = read_lock(ROOT / "requirements" / lock)
    direct = {name for name, found in pins.items() if any(p.via_project for p in found)}
    wanted = {canonicalize_name(r.name) for r in declared(LOCKS[lock])}
    assert direct == wanted, "run `bash requirements/lock.sh` after changing pyproject.toml"


@pytest.mark.parametrize("lock", list(LOCKS))
def test_every_pin_carries_hashes(lock: str) -> None:
    text = (ROOT / "requirements" / lock).read_text()
    assert text.startswith("# This file was autogenerated by uv via the following command:\n")
    assert "#    bash requirements/lock.sh\n" in text
    for pins in read_lock(ROOT / "requirements" / lock).values():
        for pin in pins:
            assert pin.hashes >= 1, f"{lock}: {pin.name} has no hash"


def test_dev_lock_has_the_runtime_versions() -> None:
    runtime = read_lock(ROOT / "requirements" / "runtime.txt")
    dev = read_lock(ROOT / "requirements" / "dev.txt")
    for name, pins in runtime.items():
        assert name in dev, f"{name} is in runtime.txt but not in dev.txt"
        assert {p.version for p in pins} == {p.version for p in dev[name]}, name


def test_every_range_has_an_upper_bound() -> None:
    for req in declared(None):
        assert any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), (
            f"{req}: give it an upper bound"
        )
    runtime = {canonicalize_name(r.name): r for r in declared(())}
    assert "standard" in runtime["uvicorn"].extras


def test_conformance_extra_is_light() -> None:
    """A driver author installs the suite's needs and nothing of our test tooling."""
    names = {canonicalize_name(r.name) for r in declared(("conformance",))} - {
        canonicalize_name(r.name) for r in declared(())
    }
    assert names == {"pytest"}  # anyio is core already


# --------------------------------------------------------------------------------------------
# Every imported package is declared
# --------------------------------------------------------------------------------------------


def imported_top_modules(folder: Path) -> dict[str, Path]:
    """Top-level modules imported anywhere in ``folder`` (function-local imports too)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], path)
    return found


#: Extras of the tooling, not of a feature: no driver or front module may need one.
TOOL_EXTRAS = {"test", "dev", "conformance"}


def feature_extras() -> tuple[str, ...]:
    """The extras a driver may need (postgresql, mysql, redis...): imported lazily, with the
    ``pip install`` hint of backends/registry.py when missing."""
    project = pyproject()["project"]
    assert isinstance(project, dict)
    return tuple(sorted(set(project["optional-dependencies"]) - TOOL_EXTRAS))


@pytest.mark.parametrize(
    ("folder", "extras"),
    [
        ("adapter", ()),
        ("backends", feature_extras()),
        # The conformance suite a driver author runs: core + [conformance].
        ("backends/testing", ("conformance",)),
    ],
)
def test_every_imported_package_is_declared(folder: str, extras: tuple[str, ...]) -> None:
    allowed = {canonicalize_name(r.name) for r in declared(extras)}
    # Extras of declared packages bring these (SQLAlchemy[asyncio] -> greenlet...): a module
    # we import must come from a distribution declared by name, not through another's extra.
    distributions = importlib.metadata.packages_distributions()
    first_party = {"adapter", "backends"}
    exempt = ["backends/testing"] if folder == "backends" else []
    undeclared = {}
    for module, path in imported_top_modules(ROOT / folder).items():
        if any(str(path.relative_to(ROOT)).startswith(e) for e in exempt):
            continue
        if module in first_party or module in sys.stdlib_module_names:
            continue
        owners = {canonicalize_name(d) for d in distributions.get(module, [])}
        if not owners & allowed:
            undeclared[module] = str(path.relative_to(ROOT))
    assert undeclared == {}, "imported but not declared in pyproject.toml"


# --------------------------------------------------------------------------------------------
# The Dockerfile, as far as it can be checked without a Docker engine
# --------------------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, args = line.strip().partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def dockerignored(path: str) -> bool:
    """Whether ``.dockerignore`` keeps ``path`` out of the build context (last match wins,
    ``!`` re-includes; the subset of Docker's syntax the file uses)."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        candidates = prefixes + [p.split("/")[-1] for p in prefixes]
        if pattern.startswith("**/"):
            candidates = [p.split("/")[-1] for p in prefixes]
            pattern = pattern[3:]
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerfile_copies_files_that_exist_and_reach_the_build_context() -> None:
    copies = [args.split()[:-1] for instruction, args in dockerfile() if instruction == "COPY"]
    sources = [source for sources in copies for source in sources]
    assert sources, "the Dockerfile copies nothing?"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
    # The helper understands the file: it does exclude what it should.
    assert dockerignored(".venv") and dockerignored("tests/test_build.py")
    assert dockerignored("adapter/__pycache__/app.cpython-311.pyc")
    assert not dockerignored("config.example.yaml") and dockerignored("config.yaml")


def test_dockerfile_installs_locked_dependencies_before_copying_the_code() -> None:
    steps = dockerfile()
    install = next(
        i for i, (ins, args) in enumerate(steps) if ins == "RUN" and "--require-hashes" in args
    )
    assert "requirements.txt" in steps[install][1]
    lock_copy = next(
        i for i, (ins, args) in enumerate(steps) if ins == "COPY" and "requirements/" in args
    )
    assert "requirements/runtime.txt" in steps[lock_copy][1]
    code_copies = [
        i
        for i, (ins, args) in enumerate(steps)
        if ins == "COPY" and any(p in args.split()[:-1] for p in ("adapter", "backends"))
    ]
    assert lock_copy < install < min(code_copies), "a code change would reinstall dependencies"
    # The project itself is installed without resolving dependencies again.
    project_install = next(
        args for ins, args in steps[install + 1 :] if ins == "RUN" and "pip install" in args
    )
    assert "--no-deps" in project_install


def test_dockerfile_keeps_data_in_a_volume_owned_by_the_service_user() -> None:
    steps = dockerfile()
    assert ("VOLUME", '["/data"]') in steps
    workdir = [args for ins, args in steps if ins == "WORKDIR"]
    assert workdir[-1] == "/data", "the default SQLite file (./enginy-adapter.db) must land there"
    user = [args for ins, args in steps if ins == "USER"][-1]
    uid = user.split(":")[0]
    setup = " ".join(args for ins, args in steps if ins == "RUN")
    assert f"--uid {uid}" in setup and "chown enginy:enginy /data" in setup
    # The volume is declared after the last step that writes into /data: Docker would discard
    # later changes.
    volume_at = steps.index(("VOLUME", '["/data"]'))
    assert all(ins != "RUN" for ins, _ in steps[volume_at:])


def test_dockerfile_health_check_is_the_cli_command() -> None:
    steps = dockerfile()
    health = next(args for ins, args in steps if ins == "HEALTHCHECK")
    command = re.search(r"CMD (\[.*\])", health)
    assert command is not None
    argv = ast.literal_eval(command.group(1))
    assert argv[:2] == ["enginy-adapter", "healthcheck"]
    assert "healthcheck" in COMMANDS
    entry = next(args for ins, args in steps if ins == "ENTRYPOINT")
    scripts = pyproject()["project"]
    assert isinstance(scripts, dict)
    assert ast.literal_eval(entry) == ["enginy-adapter"] and "enginy-adapter" in scripts["scripts"]
