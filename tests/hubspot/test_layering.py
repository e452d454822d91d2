"""The HubSpot driver ships without its fake: importing it loads no test tool."""

from __future__ import annotations

import subprocess
import sys


def test_the_driver_never_imports_the_fake_or_the_test_suite() -> None:
    code = (
        "import sys, backends.hubspot, backends.registry;"
        "print(sorted(m for m in sys.modules if m.startswith(('backends.testing', 'pytest'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
