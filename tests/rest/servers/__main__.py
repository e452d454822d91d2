"""Start the test servers by hand: ``python -m tests.rest.servers COMMAND`` from the checkout.

    bottlecrm            BottleCRM with a fresh organisation; prints CRM_BASE_URL and CRM_TOKEN
    directus [--sqlite]  Directus with the CRM schema; prints CRM_BASE_URL and CRM_TOKEN
    proxy --upstream URL --fault error_after=0.1 ...   the fault proxy in front of a server
    status               what is installed, and where

Each runs until Ctrl-C (or SIGTERM), then stops cleanly: no process, database or Redis key is
left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from tests.rest.servers import _layout
from tests.rest.servers.bottlecrm import BottleCRMServer, NotAvailable
from tests.rest.servers.directus import DirectusServer
from tests.rest.servers.faultproxy import FaultPlan, FaultProxy


def _wait_for_interrupt() -> None:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    print("running; Ctrl-C stops it", file=sys.stderr, flush=True)
    stop.wait()


def _bottlecrm(args: argparse.Namespace) -> None:
    with BottleCRMServer(workers=args.workers, threads=args.threads) as server:
        tenant = server.tenant
        print(f"CRM_BASE_URL={tenant.base_url}")
        print(f"CRM_TOKEN={tenant.token}")
        print(f"# organisation {tenant.org_name} ({tenant.org_id})")
        print(f"# admin {tenant.admin_email} profile {tenant.admin_profile_id}")
        print(f"# member {tenant.member_email} profile {tenant.member_profile_id}")
        print(f"# database {server.database}; log {server.log}", flush=True)
        _wait_for_interrupt()


def _directus(args: argparse.Namespace) -> None:
    env = dict(item.split("=", 1) for item in args.env)
    with DirectusServer(database="sqlite" if args.sqlite else "postgres", env=env) as server:
        print(f"CRM_BASE_URL={server.base_url}")
        print(f"CRM_TOKEN={server.token}")
        print(f"# admin {server.admin_email} id {server.admin_id}")
        print(f"# member {server.member_email} id {server.member_id}")
        print(f"# Data Studio {server.base_url}/admin; log {server.log}", flush=True)
        _wait_for_interrupt()


def _proxy(args: argparse.Namespace) -> None:
    plan = FaultPlan(
        FaultPlan.parse_rates(args.fault),
        seed=args.seed,
        methods=args.methods.split(",") if args.methods else None,
        path=args.path,
        hang_seconds=args.hang,
    )

    async def main() -> None:
        async with FaultProxy(args.upstream, plan) as proxy:
            print(f"PROXY_URL={proxy.url}", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            counts = proxy.counts()
        summary = ", ".join(f"{fault or 'passed'}: {n}" for fault, n in counts.items())
        print(f"# {sum(counts.values())} exchanges ({summary or 'none'})")

    asyncio.run(main())


def _status(args: argparse.Namespace) -> None:
    for name, home in (
        ("BottleCRM", _layout.bottlecrm_home()),
        ("Directus", _layout.directus_home()),
    ):
        state = "installed" if _layout.installed(home) else "not installed"
        print(f"{name}: {state} ({home})")
    print(f"BottleCRM template database: {_layout.bottlecrm_template()}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.rest.servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    bottlecrm = commands.add_parser("bottlecrm", help="start BottleCRM")
    bottlecrm.add_argument("--workers", type=int, default=2)
    bottlecrm.add_argument("--threads", type=int, default=4)
    bottlecrm.set_defaults(run=_bottlecrm)
    directus = commands.add_parser("directus", help="start Directus with the CRM schema")
    directus.add_argument("--sqlite", action="store_true", help="an SQLite file, not PostgreSQL")
    directus.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="a Directus setting"
    )
    directus.set_defaults(run=_directus)
    proxy = commands.add_parser("proxy", help="run the fault proxy")
    proxy.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT")
    proxy.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="FAULT=RATE",
        help="error_before, error_after, reset_before, reset_after, timeout_before, timeout_after",
    )
    proxy.add_argument("--seed", type=int, default=0)
    proxy.add_argument("--methods", help="comma-separated methods to fault (default: all)")
    proxy.add_argument("--path", help="fault only targets matching this regular expression")
    proxy.add_argument("--hang", type=float, default=30.0, help="seconds a timeout holds on")
    proxy.set_defaults(run=_proxy)
    commands.add_parser("status", help="what is installed").set_defaults(run=_status)

    args = parser.parse_args(argv)
    try:
        args.run(args)
    except NotAvailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
