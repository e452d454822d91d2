"""The HTTP front of Enginy's contract: routes, endpoints, API-key auth, OpenAPI, dashboard.

* :mod:`adapter.http.routes` — the route table (15 routes, one per path);
* :mod:`adapter.http.endpoints` — parsing and validating bodies, calling the service;
* :mod:`adapter.http.auth` — the API-key middleware (A.2);
* :mod:`adapter.http.openapi_operations` — the documented routes, written by hand;
* :mod:`adapter.http.openapi` — the OpenAPI document generated from them and the wire models;
* :mod:`adapter.http.dashboard` — the ``/ui`` pages (HTTP Basic), with
  :mod:`adapter.http.login` (the password check and login throttling),
  :mod:`adapter.http.ui_templates` (the pages' templates and headers) and
  :mod:`adapter.http.ui_dispatch` (``/ui`` dispatched ahead of the API-key check).

Errors of every kind are rendered by the handlers of :mod:`adapter.errors`. Operations
(telemetry, start-up) wrap this layer from above (:mod:`adapter.ops`).
"""

from __future__ import annotations
