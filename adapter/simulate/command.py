"""``enginy-adapter simulate``: the command-line face of the simulator.

``adapter/cli/commands.py`` owns the subcommand table and wires this module in with::

    simulate.add_arguments(subparsers.add_parser("simulate", help=...))
    ...
    return simulate.run(args)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Callable
from typing import TextIO

import httpx

from adapter.simulate.report import mask_secret, scrub_secret
from adapter.simulate.runner import DEFAULT_MAX_REQUESTS, simulate

__all__ = ["API_KEY_ENV", "EXIT_USAGE", "add_arguments", "run", "run_async"]

#: Read when ``--api-key`` is not given, so the key need not appear in the process list.
API_KEY_ENV = "ENGINY_ADAPTER_API_KEY"
EXIT_USAGE = 2

DESCRIPTION = """\
Play Enginy's side of the Custom CRM contract against a running server (this adapter with any
driver, or any other implementation) and print a table of checks: MUST (the contract Enginy
relies on) and SHOULD (this project's stricter decisions). Exits 1 iff a MUST failed.
Every record written is tagged with the run id (externalIds sim-<runid>-..., emails
...+sim-<runid>@example.invalid, a field enginySimulationRun); use --read-only against a
production CRM to write nothing.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` options to ``parser`` (a subparser of ``enginy-adapter``)."""
    if parser.description is None:
        parser.description = DESCRIPTION
    parser.add_argument("--url", required=True, help="the server's base URL, path prefix included")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"the key Enginy would send (default: ${API_KEY_ENV}); never printed",
    )
    parser.add_argument("--header", default="X-API-Key", help="key header name (X-API-Key)")
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="write nothing: auth, health, users, sync of records that cannot exist, "
        "unknown task, unparseable bodies sent to the sync endpoint",
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=10.0, help="seconds per request (10)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--contacts",
        type=_bounded_int(1, 1000),
        default=110,
        help="contacts the export writes, sent in batches of 100 (110)",
    )
    parser.add_argument(
        "--max-requests",
        type=_bounded_int(10, 10000),
        default=DEFAULT_MAX_REQUESTS,
        help=f"stop after this many requests ({DEFAULT_MAX_REQUESTS})",
    )
    parser.add_argument("--run-id", type=_run_id, default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run the simulation described by ``args``; return the exit code (0, 1, or 2 for usage)."""
    return asyncio.run(run_async(args))


async def run_async(
    args: argparse.Namespace,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    out: TextIO | None = None,
) -> int:
    """:func:`run` without the event loop; ``transport`` lets tests serve an ASGI app."""
    out = out or sys.stdout
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV, "")
    if not api_key:
        print(f"simulate: no API key: pass --api-key or set {API_KEY_ENV}", file=sys.stderr)
        return EXIT_USAGE
    try:
        url = httpx.URL(args.url)
    except httpx.InvalidURL as exc:
        print(f"simulate: --url: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if url.scheme not in ("http", "https") or not url.host:
        print("simulate: --url must be an http(s) URL with a host", file=sys.stderr)
        return EXIT_USAGE
    shown = scrub_secret(str(url.copy_with(username=None, password=None)), api_key)
    if not args.json:
        print(
            f"Simulating Enginy against {shown} (header {args.header}, key "
            f"{mask_secret(api_key)}){' read-only' if args.read_only else ''}",
            file=out,
        )
    async with httpx.AsyncClient(
        base_url=url,
        transport=transport,
        timeout=httpx.Timeout(args.timeout),
        follow_redirects=False,
    ) as client:
        report = await simulate(
            client,
            api_key=api_key,
            header=args.header,
            read_only=args.read_only,
            run_id=args.run_id,
            timeout=args.timeout,
            max_requests=args.max_requests,
            contacts=args.contacts,
            url=shown,
        )
    text = report.to_json() if args.json else report.to_table()
    print(scrub_secret(text, api_key), file=out)
    return report.exit_code


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("must be in (0, 600] seconds")
    return value


def _run_id(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9]{1,16}", text):
        raise argparse.ArgumentTypeError("1-16 lower-case letters or digits")
    return text


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse
