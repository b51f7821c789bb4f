"""Fair calibration: the subgroups whose probabilities are off.

A model can be well calibrated overall and still over- or under-predict in one group of
patients (an age band, a gender, a treatment, a configured subgroup): its flags then
fall too often, or too seldom, on that group. :func:`miscalibrated_groups` names each
subgroup level whose 95% CI of calibration in the large excludes 0, or whose CI of the
calibration slope excludes 1 (the intervals :func:`evaluate_predictions` computes per
subgroup by the patient bootstrap). The model card, the report and ``engagekit monitor``
name them.

Each level's interval has a 5% chance of excluding the ideal value when the model is
perfectly calibrated in it, so among many subgroup levels one may be named by chance:
:func:`expected_by_chance` says how many.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._result import Metrics

__all__ = ["IDEAL_CALIBRATION", "Miscalibration", "expected_by_chance", "miscalibrated_groups"]

#: The value of each calibration measure for perfectly calibrated probabilities.
IDEAL_CALIBRATION = {"calibration_intercept": 0.0, "calibration_slope": 1.0}


@dataclass(frozen=True)
class Miscalibration:
    """One subgroup level whose calibration interval excludes the ideal value.

    Attributes
    ----------
    column, level : str
        The subgroup (``treatment``, ``age_band`` …) and its level.
    measure : str
        ``calibration_intercept`` (calibration in the large: above 0, the outcome is more
        frequent than predicted) or ``calibration_slope`` (below 1, the predictions are
        too extreme).
    value, ci_low, ci_high : float
    n_encounters, n_patients : int
    """

    column: str
    level: str
    measure: str
    value: float
    ci_low: float
    ci_high: float
    n_encounters: int
    n_patients: int

    @property
    def ideal(self) -> float:
        return IDEAL_CALIBRATION[self.measure]

    def sentence(self, label: str | None = None) -> str:
        """What is off, in words; ``label`` names the level (a treatment's label) instead
        of its code.

        >>> Miscalibration("age_band", "18-24", "calibration_intercept", 0.31, 0.12, 0.5,
        ...                410, 90).sentence()
        'age band 18-24: calibration in the large 0.31 (95% CI 0.12 to 0.50), the outcome more frequent than predicted'
        """  # noqa: E501
        name = self.column.replace("_", " ")
        if self.measure == "calibration_intercept":
            measure = "calibration in the large"
            meaning = (
                "the outcome more frequent than predicted"
                if self.value > self.ideal
                else "the outcome less frequent than predicted"
            )
        else:
            measure = "calibration slope"
            meaning = (
                "predictions too extreme" if self.value < self.ideal else "predictions too modest"
            )
        ci = f"95% CI {self.ci_low:.2f} to {self.ci_high:.2f}"
        return f"{name} {label or self.level}: {measure} {self.value:.2f} ({ci}), {meaning}"


def miscalibrated_groups(metrics: Metrics) -> tuple[Miscalibration, ...]:
    """The subgroup levels of ``metrics`` whose calibration interval excludes the ideal
    value (0 for calibration in the large, 1 for the slope), in the order of the groups.

    Levels without an interval (too small, no bootstrap) are never named.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from engagekit.evaluation import evaluate_predictions
    >>> rng = np.random.default_rng(1)
    >>> n = 4000
    >>> group = np.where(np.arange(n) < n // 2, "a", "b")
    >>> p = rng.uniform(0.2, 0.8, n)
    >>> truth = np.where(group == "b", np.clip(p + 0.15, 0, 1), p)  # b attends more
    >>> y = (rng.uniform(size=n) < truth).astype(int)
    >>> metrics = evaluate_predictions(y, p, np.arange(n) // 4,
    ...                                by=pd.DataFrame({"site": group}), n_boot=200)
    >>> [(m.level, m.measure) for m in miscalibrated_groups(metrics)]
    [('b', 'calibration_intercept')]
    """
    found = []
    for column, levels in metrics.by_group.items():
        for level, block in levels.items():
            for measure, ideal in IDEAL_CALIBRATION.items():
                estimate = block.estimate(measure)
                low, high, value = estimate.ci_low, estimate.ci_high, estimate.value
                if low is None or high is None or value is None:
                    continue
                if not low <= ideal <= high:
                    found.append(
                        Miscalibration(
                            column=column,
                            level=str(level),
                            measure=measure,
                            value=value,
                            ci_low=low,
                            ci_high=high,
                            n_encounters=block.n_encounters,
                            n_patients=block.n_patients,
                        )
                    )
    return tuple(found)


def expected_by_chance(metrics: Metrics, level: float = 0.95) -> float:
    """How many (level, measure) intervals would exclude the ideal value by chance alone,
    were the model perfectly calibrated in every subgroup level with an interval.

    >>> from engagekit.evaluation import Metrics
    >>> expected_by_chance(Metrics.model_construct(by_group={}))
    0.0
    """
    tested = sum(
        1
        for levels in metrics.by_group.values()
        for block in levels.values()
        for measure in IDEAL_CALIBRATION
        if block.estimate(measure).ci_low is not None
    )
    return tested * (1.0 - level)
