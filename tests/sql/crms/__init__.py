"""Faithful copies of five open-source CRMs' tables, for testing mapped mode against them.

One module per CRM - :mod:`.suitecrm`, :mod:`.espocrm`, :mod:`.civicrm` (MariaDB),
:mod:`.odoo`, :mod:`.twenty` (PostgreSQL) - each with:

* ``database(server_url=...)``: an async context manager that creates a uniquely named
  database on the server, builds the CRM's tables from the CRM's own published schema (the
  module docstring names the files and version), seeds rows as the CRM itself writes them,
  yields a handle, and drops the database afterwards (skipping, or failing under
  ``ENGINY_REQUIRE_DATABASES=1``, when the server does not answer);
* the handle (``SuiteCRM``, ``EspoCRM``, ``Odoo``, ``CiviCRM``, ``Twenty``), which follows
  :class:`._shared.CrmDatabase`: ``url`` (what a preset's ``DATABASE_URL`` is), ``engine``,
  ``seed`` (the seeded ids and stored values) and the "screen" queries ``contacts()``,
  ``contact(id)``, ``companies()``, ``company(id)``, ``timeline(id)``, ``open_tasks(id)``,
  ``users()``, which answer what the CRM's own list/detail views would show, by the same
  conditions those views use;
* ``DDL`` / ``TABLES`` (Twenty: ``ddl(schema)``), for tests that need the raw statements.

``README.md`` beside this file lists what a correct adapter write produces in each CRM.
"""
