"""`python -m bench`: run every benchmark and print a report (one JSON object per benchmark).

Each benchmark measures against a baseline taken in the same run (kubectl, the pod's hostPort, a
minimal Textual app), because these machines are too noisy for absolute numbers to mean much.
"""

from __future__ import annotations

import sys


def main() -> int:
    from . import cli_validate, kube_api, lb_path, ports_scan, tui_board

    kube_api.main()  # the sandbox's API server on the scale world, against the client and kubectl
    lb_path.main()  # requests through the LB path against the pod's hostPort
    ports_scan.main()  # the port-conflict scan against kubectl on the scale world
    tui_board.main_first_paint()  # the wizard's first paint against a minimal Textual app
    tui_board.main_board()  # the board's delay after a change in the sandbox
    cli_validate.main()  # API requests and time per `validate` run and per continuous refresh
    return 0


if __name__ == "__main__":
    sys.exit(main())
