"""``enginy-adapter simulate``: play Enginy's side of the Custom CRM contract against a server.

The package is organised the way a run goes:

* :mod:`~adapter.simulate.connect` - health, auth, the users probe and the read-only probes;
* :mod:`~adapter.simulate.export` - companies, contacts (batches of 100), associations (their
  record calls in :mod:`~adapter.simulate.record_calls`);
* :mod:`~adapter.simulate.campaign` - the eight activity kinds and engagement-field updates;
* :mod:`~adapter.simulate.tasks` - create, get, complete, batch get, batch complete;
* :mod:`~adapter.simulate.errors` - bad input that needs a writing endpoint;
* :mod:`~adapter.simulate.runner` - :func:`simulate`, the core, which takes an
  ``httpx.AsyncClient`` (tests pass an ASGI transport);
* :mod:`~adapter.simulate.command` - :func:`add_arguments` and :func:`run` for
  ``adapter/cli/commands.py``.

Checks are MUST (Part B of the contract) or SHOULD (Part A); the exit code is 1 iff a MUST failed.
"""

from __future__ import annotations

from adapter.simulate.command import add_arguments, run, run_async
from adapter.simulate.report import Check, Level, Report, Status
from adapter.simulate.runner import simulate

__all__ = [
    "Check",
    "Level",
    "Report",
    "Status",
    "add_arguments",
    "run",
    "run_async",
    "simulate",
]
