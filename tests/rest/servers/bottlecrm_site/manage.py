"""BottleCRM's manage.py, which the django-crm wheel does not ship (it has ``crm/settings.py``
but no entry point). Runs with BottleCRM's own venv; settings come from the environment."""

import os
import sys

from django.core.management import execute_from_command_line

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enginy_test_settings")
    execute_from_command_line(sys.argv)
