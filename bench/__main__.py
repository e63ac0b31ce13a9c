"""`python -m bench`: run every benchmark and print a report."""

from __future__ import annotations

import sys


def main() -> int:
    from . import kube_api

    kube_api.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
