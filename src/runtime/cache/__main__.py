"""``python -m runtime.cache``: the ``runtime-cache`` command line."""

from __future__ import annotations

import sys

from runtime.cache.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
