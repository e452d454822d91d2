"""Adapter processes (``enginy-adapter serve``) in front of one fake HubSpot portal: the set-up
of the replica test and of ``bench/hubspot.py``."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

PORTAL_TOKEN = "pat-na1-fake-token"  # the fake server's default token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def adapter_config(path: Path, *, portal_url: str, key: str, options: dict[str, Any]) -> Path:
    settings = {
        "auth": {"keys": [key]},
        "backend": {
            "driver": "hubspot",
            "options": {"token": "${HUBSPOT_TOKEN}", "base_url": portal_url, **options},
        },
    }
    path.write_text(yaml.safe_dump(settings))
    return path


@contextlib.contextmanager
def adapters(config: Path, count: int, *, start_timeout: float = 60.0) -> Iterator[list[str]]:
    """Start ``count`` ``enginy-adapter serve`` processes on free loopback ports; yield their
    base URLs once each answers ``/health``; stop them afterwards."""
    env = {**os.environ, "HUBSPOT_TOKEN": PORTAL_TOKEN}
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    key = yaml.safe_load(config.read_text())["auth"]["keys"][0]
    # Logs go to a file, not a pipe: an unread pipe fills up and blocks the server.
    with tempfile.TemporaryFile() as log:
        try:
            yield _start(config, count, env, key, procs, urls, log, start_timeout)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _start(
    config: Path,
    count: int,
    env: dict[str, str],
    key: str,
    procs: list[subprocess.Popen[bytes]],
    urls: list[str],
    log: IO[bytes],
    start_timeout: float,
) -> list[str]:
    for _ in range(count):
        port = free_port()
        command: Sequence[str] = [
            sys.executable, "-m", "adapter", "serve", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log))
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + start_timeout
    for url, proc in zip(urls, procs, strict=True):
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"adapter exited: {log.read().decode()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", headers={"X-API-Key": key}).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"adapter at {url} did not become healthy")
            time.sleep(0.2)
    return urls
