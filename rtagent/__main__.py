"""``python -m rtagent``: the same command line as the ``rtagent`` script."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
