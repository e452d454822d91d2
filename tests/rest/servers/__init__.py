"""Real CRM servers for the REST driver's tests, and a fault-injecting proxy.

- ``bottlecrm``: BottleCRM (PyPI ``django-crm``) on a clone of a migrated template database;
- ``directus``: Directus (npm ``directus``) with the CRM schema of ``examples/rest``;
- ``faultproxy``: turns a share of HTTP exchanges into 5xx, resets or timeouts, by seed;
- ``fixtures``: the pytest fixtures over them; ``install.sh``: installs the servers.

``python -m tests.rest.servers --help`` starts any of them by hand. docs/rest-servers.md has the
whole story.
"""
