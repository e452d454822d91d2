"""Server processes die with their whole process group when stopped, and with the Python process
that started them when it is killed without cleaning up (no orphan gunicorn or node)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.rest.servers._proc import ServerProcess, group_members, wait_group_gone

TREE = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"


def _wait_for_members(pgid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 10
    while len(members := group_members(pgid)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


def test_stop_ends_the_whole_group(tmp_path: Path) -> None:
    process = ServerProcess(
        [sys.executable, "-c", TREE], env={}, cwd=tmp_path, log=tmp_path / "log", name="tree"
    )
    assert len(_wait_for_members(process.pid, 3)) == 3  # supervisor, server, its child
    process.stop(grace=5)
    assert not process.alive()
    assert wait_group_gone(process.pid) == []


def test_a_server_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    starter = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tests.rest.servers._proc import ServerProcess\n"
        "p = ServerProcess([sys.executable, '-c', sys.argv[1]], env={}, cwd=Path(sys.argv[2]),\n"
        "                  log=Path(sys.argv[2]) / 'log', name='tree')\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", starter, TREE, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    ) as parent:
        try:
            assert parent.stdout is not None
            server = int(parent.stdout.readline())
            assert len(_wait_for_members(server, 3)) == 3
            parent.kill()  # SIGKILL: no atexit, no clean-up code runs
            parent.wait(5)
            assert wait_group_gone(server) == []
        finally:
            parent.kill()
