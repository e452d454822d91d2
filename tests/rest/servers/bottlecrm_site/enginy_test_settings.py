"""BottleCRM's Django settings under the tests: the package's own ``crm.settings``, which reads
everything else from the environment (DBNAME, DBUSER, SECRET_KEY, DEBUG, ALLOWED_HOSTS,
CELERY_BROKER_URL...), plus the two settings it has no variable for."""

import os

from crm.settings import *  # noqa: F403

# Every create queues a celery task in Redis; nothing consumes them here (the API needs no
# worker). A key prefix per server keeps its queue apart from everyone else's keys in the same
# Redis, and lets the fixture delete exactly its own keys when the server stops.
_prefix = os.environ["ENGINY_REDIS_PREFIX"]
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": _prefix}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": _prefix}

# whitenoise warns in every worker when STATIC_ROOT does not exist (an installed wheel has none).
STATIC_ROOT = os.environ["ENGINY_STATIC_ROOT"]
