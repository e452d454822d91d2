"""Running the HTTP front in production: telemetry, logs, backend instrumentation, start-up,
limits and listeners.

* :mod:`adapter.ops.telemetry` — Prometheus metrics, the recent-calls buffer, the middleware
  that writes one log line per request;
* :mod:`adapter.ops.logs` — request ids, the JSON/text log formats, the debug body log;
* :mod:`adapter.ops.instrument` — timing and counting every driver call;
* :mod:`adapter.ops.startup` — opening the backend at start-up, serving 503 until it opens;
* :mod:`adapter.ops.limits` — requests in flight, the budget of body bytes, stalled uploads;
* :mod:`adapter.ops.connections` — uvicorn's protocol with the header deadline and the
  connection cap;
* :mod:`adapter.ops.listeners` — a listener of its own (the dashboard's), on the same event
  loop;
* :mod:`adapter.ops.outbox_metrics` — the outbox's metrics.

These wrap the HTTP layer (:mod:`adapter.http`); :func:`adapter.app.create_app` puts them
together. Nothing here imports :mod:`adapter.app` or :mod:`adapter.cli`. The package itself
re-exports nothing, so that importing one module does not import the others.
"""

from __future__ import annotations
