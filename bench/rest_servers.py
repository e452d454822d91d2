"""How long the REST tests' real servers take to install and start, and what they cost a test.

    python bench/rest_servers.py [--repeat 3]

Times, on this machine (run from the checkout, after ``tests/rest/servers/install.sh``):

* ``install.sh`` when everything is installed already (what every CI run after the first pays);
* a BottleCRM start (clone of the template, gunicorn, devlogin, first organisation) and stop;
* a fresh BottleCRM organisation (``new_tenant``: what the ``bottlecrm`` fixture costs a test);
* a Directus start on PostgreSQL and on SQLite (bootstrap, ``schema apply``, start, users) and
  stop;
* emptying Directus' CRM collections (what the ``directus`` fixture costs a test);
* one contact create on each, direct and through the fault proxy without faults.

Cold numbers (a new machine: downloads, the npm build, BottleCRM's migrations) cannot be re-run
on demand; install.sh prints them when it does the work, and docs/rest-servers.md records them.
Prints one table of medians; each start is followed by its stop, so nothing is left running.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.rest.servers.bottlecrm import BottleCRMServer  # noqa: E402
from tests.rest.servers.directus import DirectusServer  # noqa: E402
from tests.rest.servers.faultproxy import FaultProxy  # noqa: E402


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median_of(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:,.0f} ms" if samples else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        rows.setdefault(name, []).append(seconds)

    for _ in range(args.repeat):
        add(
            "install.sh, already installed",
            timed(
                lambda: subprocess.run(
                    ["bash", str(REPO / "tests/rest/servers/install.sh")],
                    check=True,
                    capture_output=True,
                )
            ),
        )

    for run in range(args.repeat):
        server = BottleCRMServer()
        add("BottleCRM start (clone, gunicorn, bootstrap)", timed(server.start))
        try:
            tenant = server.tenant
            add("BottleCRM new organisation + token", timed(server.new_tenant))
            with FaultProxy(server.base_url).in_thread() as proxy:
                for label, base in (("", server.base_url), (" via the proxy", proxy.url)):
                    with httpx.Client(base_url=base, headers=tenant.headers, timeout=30) as c:
                        body = {
                            "first_name": "A",
                            "last_name": "B",
                            "email": f"{run}{len(label)}@x.ex",
                        }
                        add(
                            f"BottleCRM contact create{label}",
                            timed(
                                lambda c=c, body=body: c.post(
                                    "/api/contacts/", json=body
                                ).raise_for_status()
                            ),
                        )
        finally:
            add("BottleCRM stop", timed(server.stop))

    for kind in ("postgres", "sqlite"):
        for run in range(args.repeat):
            directus = DirectusServer(database=kind)  # type: ignore[arg-type]
            add(f"Directus start on {kind} (bootstrap, schema apply)", timed(directus.start))
            try:
                with directus.client(timeout=30) as client:
                    body = {"email": f"d{run}@x.example"}
                    add(
                        f"Directus contact create ({kind})",
                        timed(
                            lambda c=client, body=body: c.post(
                                "/items/contacts", json=body
                            ).raise_for_status()
                        ),
                    )
                add(f"Directus empty the CRM collections ({kind})", timed(directus.clear))
            finally:
                add(f"Directus stop ({kind})", timed(directus.stop))

    width = max(len(name) for name in rows)
    print(f"{'step':<{width}}  {'median':>10}  runs")
    for name, samples in rows.items():
        print(f"{name:<{width}}  {median_of(samples):>10}  {len(samples)}")


if __name__ == "__main__":
    main()
