"""``python3 -B -m centaur_worker --in-fd 3 --out-fd 4 [--cache-runs N] [--cache-rss-bytes B]``."""

import os
import sys


def _prefer_own_packages() -> None:
    """Puts the directory holding ``api`` and ``centaur_worker`` first on sys.path, and drops
    the current directory that ``-m`` put there: a workflow's ``import api`` must reach the
    worker's package, never a directory of the manager's working directory."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    sys.path.insert(0, here)


if __name__ == "__main__":
    _prefer_own_packages()
    from centaur_worker.main import main

    main()
