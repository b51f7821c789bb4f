"""Adversarial tests: each module attacks one class of hostile input or interrupted run
the way an adversary (or an unlucky service) would, and checks that engagekit refuses it
with a message, or leaves every output either absent, as it was, or complete.

The helpers of the main test folder (``_cli``, ``_factories``, ``_browser``) are
importable here as they are there.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
