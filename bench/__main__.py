"""`python -m bench`: run every benchmark and print a report."""

from __future__ import annotations

import sys


def main() -> int:
    from . import kube_api, lb_path

    kube_api.main()
    lb_path.main()
    from . import ports_scan

    ports_scan.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
