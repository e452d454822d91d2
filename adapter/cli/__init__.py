"""The ``enginy-adapter`` command line: the top of the front's layers.

:func:`main` is the console script (``enginy-adapter = "adapter.cli:main"``); the parser and the
command table are in :mod:`adapter.cli.commands`, one module per command beside it, and what
the commands share (settings from flags, one-line failures) in :mod:`adapter.cli.common`.
"""

from __future__ import annotations

from adapter.cli.commands import COMMANDS, build_parser, main, register
from adapter.cli.common import Command, fail, load_for_command
from adapter.cli.serve import ensure_api_key

__all__ = [
    "COMMANDS",
    "Command",
    "build_parser",
    "ensure_api_key",
    "fail",
    "load_for_command",
    "main",
    "register",
]
