"""``python -m adapter``: the same command line as ``enginy-adapter``."""

from __future__ import annotations

from adapter.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
