"""Fixtures shared by the test suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from engagekit.simulation import simulate_encounters


@pytest.fixture
def make_encounters() -> Callable[..., pd.DataFrame]:
    """Factory of simulated encounter tables.

    ``make_encounters(n_patients=200, seed=0, **kwargs)`` returns the ``encounters``
    frame of :func:`engagekit.simulation.simulate_encounters`; ``kwargs`` go to it
    (``config=``, ``heterogeneity=``).
    """

    def make(n_patients: int = 200, seed: int = 0, **kwargs: Any) -> pd.DataFrame:
        return simulate_encounters(n_patients, seed=seed, **kwargs).encounters

    return make
