"""Save the dashboard screenshots shown in the README (``docs/dashboard.png`` and
``docs/dashboard-overview.png``).

They are taken by the end-to-end browser test itself (``tests/test_ui_browser.py``: headless
Chromium logs in, opens a contact and checks its timeline), so the picture is always of a page
the test has verified. Needs Debian's ``chromium`` package and the ``websockets`` test extra.

    python bench/screenshot.py [OUTPUT_DIR]    # default: docs/
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ENGINY_SCREENSHOT_DIR": str(out.resolve()), "CI": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_ui_browser.py"],
        cwd=ROOT, env=env, check=False,
    )
    if result.returncode == 0:
        for name in ("dashboard.png", "dashboard-overview.png"):
            print(f"saved {out / name}")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
