"""The ``enginy-adapter`` command line (also ``python -m adapter``): the parser and the
sub-command table.

Sub-commands live in one table, :data:`COMMANDS`: each entry says how to add its arguments and
how to run (:class:`~adapter.cli.common.Command`). Every command that reads the configuration
gets ``--config FILE`` (default ``$ENGINY_ADAPTER_CONFIG``; with neither, the built-in defaults
and the embedded backend). Adding a command is one more :func:`register` call.

* ``serve`` (:mod:`adapter.cli.serve`): run the HTTP service with uvicorn;
* ``check`` (:mod:`adapter.cli.check`): validate the configuration and reach the backend;
* ``links`` (:mod:`adapter.cli.links`): print the record-link templates for Enginy;
* ``healthcheck`` (:mod:`adapter.cli.healthcheck`): call the local service's ``/health``, as
  configured (the Docker image's ``HEALTHCHECK``);
* ``outbox`` (:mod:`adapter.cli.outbox`): list, retry or drop the outbox's queued writes;
* ``simulate`` (:mod:`adapter.simulate`): play Enginy's side against a running server.

Exit codes: 0 success, 1 failure (configuration, backend), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence

from adapter import __version__
from adapter.cli import check, healthcheck, links, outbox, serve
from adapter.cli.common import PROG, Command
from adapter.config import ENV_CONFIG

__all__ = ["COMMANDS", "build_parser", "main", "register"]

#: Sub-command name → command, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {}


def register(name: str, command: Command) -> None:
    """Add (or replace) a sub-command."""
    COMMANDS[name] = command


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    from adapter.simulate import command  # imported only for this command

    command.add_arguments(parser)


def _simulate(args: argparse.Namespace) -> int:
    from adapter.simulate import command

    return command.run(args)


register("serve", serve.COMMAND)
register("check", check.COMMAND)
register("links", links.COMMAND)
register("healthcheck", healthcheck.COMMAND)
register("outbox", outbox.COMMAND)
register(
    "simulate",
    Command(
        help="play Enginy's side of the contract against a running server and report",
        add_arguments=_simulate_arguments,
        run=_simulate,
        uses_config=False,  # it talks to a server by URL, whatever its configuration
    ),
)


def build_parser(commands: Mapping[str, Command] | None = None) -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command of ``commands`` (default: all)."""
    table = COMMANDS if commands is None else commands
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve Enginy's Custom CRM contract in front of your CRM.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML configuration (default: ${ENV_CONFIG}; none: built-in defaults)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in table.items():
        parents = [common] if command.uses_config else []
        child = sub.add_parser(name, help=command.help, description=command.help, parents=parents)
        command.add_arguments(child)
        child.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args._run
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
