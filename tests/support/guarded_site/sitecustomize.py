"""Loaded by every Python process a test starts (tests/support/netguard.py puts this directory on
PYTHONPATH): the loopback-only network guard, installed in the child too. Loaded by file path so
that nothing is added to the child's sys.path."""

import os

_log = os.environ.get("KEYBUZZ_NETGUARD_LOG")
if _log:
    import importlib.util
    import sys

    _spec = importlib.util.spec_from_file_location(
        "keybuzz_netguard", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "netguard.py")
    )
    if _spec is not None and _spec.loader is not None:
        _mod = importlib.util.module_from_spec(_spec)
        sys.modules["keybuzz_netguard"] = _mod
        _spec.loader.exec_module(_mod)
        _mod.install_child(_log)
