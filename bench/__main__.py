"""`python -m bench`: run every benchmark and print a report."""

from __future__ import annotations

import sys


def main() -> int:
    from . import kube_api, lb_path

    kube_api.main()
    lb_path.main()
    from . import ports_scan

    ports_scan.main()
    from . import tui_board; tui_board.main_first_paint()  # noqa: E702, I001 - the wizard's first paint vs a minimal app
    from . import tui_board; tui_board.main_board()  # noqa: E702, I001 - the board's delay after a sandbox change
    from . import cli_validate; cli_validate.main()  # noqa: E702, I001 - API requests and time per `validate` run and per continuous refresh
    return 0


if __name__ == "__main__":
    sys.exit(main())
