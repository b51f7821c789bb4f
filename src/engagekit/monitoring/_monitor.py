"""Monitoring a model's score history: :func:`monitor` turns the scores, the outcomes
that followed and the flag reviews into a :class:`~._result.MonitorResult`.

Nothing here reads a file or a database: the caller gives the tables (``engagekit
monitor`` reads them from the service's database and an encounter export).

Examples
--------
>>> import pandas as pd
>>> history = pd.DataFrame({"run_id": [2, 1, 2], "encounter_id": ["e2", "e1", "e1"],
...                         "p_attended_next": [0.7, 0.8, 0.9]})
>>> prospective_scores(history)[["run_id", "encounter_id", "p_attended_next"]]
   run_id encounter_id  p_attended_next
0       1           e1              0.8
1       2           e2              0.7
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..evaluation import Estimate, cluster_bootstrap, point_metrics
from ._acted_on import acted_on
from ._psi import PSI_ALERT, PSI_WARN, population_stability_index
from ._result import (
    Alert,
    MonitorFigure,
    MonitorResult,
    PatientGroup,
    SubgroupCalibration,
    WindowPerformance,
    WindowResult,
)
from ._spc import SIGMA_LIMITS, observed_minus_expected
from ._windows import MonitorWindow, window_bounds, window_labels

__all__ = ["RATING_PREFIX", "monitor", "prospective_scores"]

#: The prefix of the scores table's rating columns (``rating_empathy``).
RATING_PREFIX = "rating_"
_RUN = "run_id"
_METRICS = ("auroc", "calibration_intercept", "calibration_slope")


def prospective_scores(history: pd.DataFrame) -> pd.DataFrame:
    """Each encounter's score from the earliest run that scored it.

    A service rescores its encounters (a new export every week, a retrained model), but
    the score that stood when the outcome was still open, and that the flags were acted
    on, is the first one; later ones may come from a model that has seen the outcome.
    Run ids grow with time, so the earliest run is the lowest ``run_id``.

    Parameters
    ----------
    history : DataFrame
        Score rows with ``run_id`` and ``encounter_id``.

    Returns
    -------
    DataFrame
        One row per encounter, by ``run_id`` then the history's order.
    """
    ordered = history.sort_values(_RUN, kind="stable")
    return ordered.drop_duplicates("encounter_id", keep="first").reset_index(drop=True)


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _estimate(values: Mapping[str, float], name: str) -> Estimate:
    return Estimate(
        value=_number(values[name]),
        ci_low=_number(values[f"{name}_ci_low"]),
        ci_high=_number(values[f"{name}_ci_high"]),
        n_boot=int(values[f"{name}_n_boot"]),
    )


_UNDEFINED = Estimate(value=None, ci_low=None, ci_high=None, n_boot=0)


def _performance(
    y: np.ndarray, p: np.ndarray, patients: np.ndarray, n_boot: int, seed: int, ci: float
) -> WindowPerformance:
    if y.size == 0:
        return WindowPerformance(
            n_encounters=0,
            n_patients=0,
            observed=None,
            expected=None,
            observed_minus_expected=None,
            lower_limit=None,
            upper_limit=None,
            **dict.fromkeys(_METRICS, _UNDEFINED),
        )
    values = cluster_bootstrap(y, p, patients, point_metrics, n_boot=n_boot, seed=seed, ci=ci)
    point = observed_minus_expected(y, p)
    return WindowPerformance(
        n_encounters=int(y.size),
        n_patients=int(pd.unique(patients).size),
        observed=point.observed,
        expected=point.expected,
        observed_minus_expected=point.observed_minus_expected,
        lower_limit=point.lower_limit,
        upper_limit=point.upper_limit,
        **{name: _estimate(values, name) for name in _METRICS},
    )


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} lacks the column(s) {', '.join(map(repr, missing))}; "
            f"it has {', '.join(map(repr, frame.columns))}"
        )


def _outcomes(scores: pd.DataFrame, outcomes: pd.DataFrame, target: str) -> np.ndarray:
    """The outcome of each scored encounter (NaN: not known yet)."""
    _require(outcomes, ["encounter_id", target], "the outcome table")
    known = outcomes[["encounter_id", target]].copy()
    known["encounter_id"] = known["encounter_id"].astype(str)
    duplicated = known["encounter_id"].duplicated()
    if duplicated.any():
        examples = ", ".join(map(repr, known.loc[duplicated, "encounter_id"].head(3)))
        raise ValueError(
            f"the outcome table holds encounter_id {examples} more than once; give one row "
            "per encounter"
        )
    mapped = scores["encounter_id"].astype(str).map(known.set_index("encounter_id")[target])
    return pd.to_numeric(mapped, errors="coerce").to_numpy(dtype=float)


def monitor(
    scores: pd.DataFrame,
    outcomes: pd.DataFrame,
    reviews: pd.DataFrame | None = None,
    *,
    target: str,
    window: MonitorWindow | str = MonitorWindow.MONTH,
    reference: pd.DataFrame | None = None,
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.95,
    subgroups: Sequence[str] = ("treatment", "age_band", "gender"),
) -> MonitorResult:
    """Monitor a model's scores window by window.

    Parameters
    ----------
    scores : DataFrame
        The scores: ``encounter_id``, ``patient_id``, ``encounter_date``,
        ``p_<target>``, and the ``rating_<quality>`` and ``treatment`` columns whose
        drift and mix are followed. With a ``run_id`` column (the history of many runs)
        each encounter's earliest score is used (:func:`prospective_scores`).
    outcomes : DataFrame
        ``encounter_id`` and ``target``, one row per encounter: the outcomes recorded
        since (a later export of the encounter table). An encounter absent or with an
        unknown outcome counts in the drift and case mix, not in the performance.
    reviews : DataFrame, optional
        The ``flag_reviews`` rows (:mod:`engagekit.monitoring._acted_on` says which
        act on an encounter); none were made when omitted.
    target : str
        The outcome the scores predict (``attended_next``).
    window : MonitorWindow
        The windows: calendar weeks, months or quarters of ``encounter_date``.
    reference : DataFrame, optional
        The ratings (``rating_<quality>`` columns) the PSI is measured against; the
        first window's scores when omitted.
    n_boot, seed, ci
        The patient bootstrap of the performance's intervals.
    subgroups : sequence of str
        The columns (of the scores, else of the outcomes) whose levels' calibration over
        the whole period is checked, on the encounters not acted on (fair calibration);
        those absent from both are skipped.

    Returns
    -------
    MonitorResult

    Raises
    ------
    ValueError
        If a column is missing, an encounter is scored twice in one table, or
        ``scores`` is empty.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> encounters = simulate_encounters(200, seed=3).encounters
    >>> scores = encounters.assign(p_adherent=0.6, rating_empathy=encounters["empathy"])
    >>> result = monitor(scores, encounters, target="adherent", window="quarter", n_boot=0)
    >>> result.windows[1].window, result.windows[1].not_acted_on.n_encounters > 0
    ('2025Q2', True)
    >>> monitor(scores.iloc[:0], encounters, target="adherent")
    Traceback (most recent call last):
    ...
    ValueError: there are no scores to monitor
    """
    window = MonitorWindow(window)
    probability = f"p_{target}"
    _require(scores, ["encounter_id", "patient_id", "encounter_date", probability], "the scores")
    if scores.empty:
        raise ValueError("there are no scores to monitor")
    if _RUN in scores.columns:
        scores = prospective_scores(scores)
    elif scores["encounter_id"].duplicated().any():
        raise ValueError(
            "the scores hold an encounter more than once; give one row per encounter, or "
            "a 'run_id' column to keep each encounter's earliest score"
        )
    # in encounter order, whatever order the rows came in (a database returns them in
    # the order its writers' chunks landed): the bootstrap draws patients in the order
    # they appear, so the intervals would otherwise depend on it
    scores = scores.sort_values("encounter_id", kind="stable", key=_as_text)
    scores = scores.reset_index(drop=True)
    dates = pd.to_datetime(scores["encounter_date"])
    labels = window_labels(dates, window).to_numpy()
    bounds = window_bounds(dates, window)
    y = _outcomes(scores, outcomes, target)
    p = scores[probability].to_numpy(dtype=float)
    patients = scores["patient_id"].astype(str).to_numpy()
    acted = (
        np.zeros(len(scores), dtype=bool)
        if reviews is None
        else acted_on(scores, reviews).to_numpy()
    )
    ratings = [c for c in scores.columns if c.startswith(RATING_PREFIX)]
    order = sorted(bounds)
    if reference is None:
        reference_rows = scores.loc[labels == order[0], ratings]
        psi_reference = f"window {order[0]}"
    else:
        _require(reference, ratings, "the reference")
        reference_rows, psi_reference = reference[ratings], "given reference"

    windows: list[WindowResult] = []
    alerts: list[Alert] = []
    for index, label in enumerate(order):
        rows = labels == label
        groups = {
            PatientGroup.ALL: rows & ~np.isnan(y),
            PatientGroup.NOT_ACTED_ON: rows & ~np.isnan(y) & ~acted,
        }
        performance = {
            group: _performance(y[m], p[m], patients[m], n_boot, seed + index, ci)
            for group, m in groups.items()
        }
        psi = {
            name: None
            if reference is None and label == order[0]
            else population_stability_index(reference_rows[name], scores.loc[rows, name])
            for name in ratings
        }
        case_mix = (
            {
                str(k): float(v)
                for k, v in scores.loc[rows, "treatment"]
                .value_counts(normalize=True, dropna=False)
                .sort_index()
                .items()
            }
            if "treatment" in scores.columns
            else {}
        )
        for group in (PatientGroup.NOT_ACTED_ON, PatientGroup.ALL):
            point = performance[group]
            if point.observed_minus_expected is None:
                continue
            assert point.lower_limit is not None and point.upper_limit is not None
            for limit, outside in (
                (point.upper_limit, point.observed_minus_expected > point.upper_limit),
                (point.lower_limit, point.observed_minus_expected < point.lower_limit),
            ):
                if outside:
                    alerts.append(
                        Alert(
                            window=label,
                            figure=MonitorFigure.OBSERVED_MINUS_EXPECTED,
                            subject=group.value,
                            value=point.observed_minus_expected,
                            limit=limit,
                        )
                    )
        alerts.extend(
            Alert(
                window=label, figure=MonitorFigure.PSI, subject=name, value=value, limit=PSI_ALERT
            )
            for name, value in psi.items()
            if value is not None and value >= PSI_ALERT
        )
        windows.append(
            WindowResult(
                window=label,
                start=bounds[label][0],
                end=bounds[label][1],
                n_encounters=int(rows.sum()),
                n_patients=int(pd.unique(patients[rows]).size),
                n_acted_on=int((rows & acted).sum()),
                all_patients=performance[PatientGroup.ALL],
                not_acted_on=performance[PatientGroup.NOT_ACTED_ON],
                psi=psi,
                case_mix=case_mix,
            )
        )
    not_acted = ~np.isnan(y) & ~acted
    miscalibrated, intervals = _miscalibrated(
        scores, outcomes, subgroups, not_acted, y, p, patients, n_boot, seed, ci
    )
    return MonitorResult(
        target=target,
        window=window,
        psi_reference=psi_reference,
        psi_warn=PSI_WARN,
        psi_alert=PSI_ALERT,
        sigma_limits=SIGMA_LIMITS,
        n_boot=n_boot,
        ci_level=ci,
        windows=windows,
        alerts=alerts,
        miscalibrated=miscalibrated,
        calibration_intervals=intervals,
    )


def _as_text(ids: pd.Series) -> pd.Series:
    return ids.astype(str)


def _miscalibrated(
    scores: pd.DataFrame,
    outcomes: pd.DataFrame,
    subgroups: Sequence[str],
    rows: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    patients: np.ndarray,
    n_boot: int,
    seed: int,
    ci: float,
) -> tuple[list[SubgroupCalibration], int]:
    """The subgroup levels whose calibration over ``rows`` (those not acted on, with an
    outcome) excludes perfect calibration, and how many intervals were checked."""
    from ..evaluation import evaluate_predictions, expected_by_chance, miscalibrated_groups

    by = {}
    for column in subgroups:
        if column in scores.columns:
            by[column] = scores[column].to_numpy(dtype=object)
        elif column in outcomes.columns:
            found = outcomes.drop_duplicates("encounter_id").set_index("encounter_id")[column]
            by[column] = scores["encounter_id"].map(found).to_numpy(dtype=object)
    if not by or n_boot == 0 or not rows.any():
        return [], 0
    frame = pd.DataFrame(by).loc[rows].astype(str).reset_index(drop=True)
    metrics = evaluate_predictions(
        y[rows].astype(int), p[rows], patients[rows], by=frame, n_boot=n_boot, seed=seed, ci=ci
    )
    named = [
        SubgroupCalibration(**dataclasses.asdict(m), sentence=m.sentence())
        for m in miscalibrated_groups(metrics)
    ]
    return named, round(expected_by_chance(metrics, ci) / (1 - ci))
