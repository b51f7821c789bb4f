"""Adversarial tests: each module attacks one class of hostile input or interrupted run
the way an adversary (or an unlucky service) would, and checks that engagekit refuses it
with a message, or leaves every output either absent, as it was, or complete.

The helpers of the main test folder (``_cli``, ``_factories``, ``_browser``) are
importable here as they are there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


@pytest.fixture(scope="session")
def score_service(tmp_path_factory) -> Path:
    """For the runs of ``engagekit score`` killed or run two at once: see
    :func:`_score_outputs.make_score_service`."""
    from _score_outputs import make_score_service

    return make_score_service(tmp_path_factory.mktemp("score_service"))
