"""Power of the cross-treatment test, by simulation.

How many patients does :func:`~engagekit.heterogeneity.heterogeneity_analysis` need to
notice that one quality matters more in one treatment, and to show that the others
matter alike everywhere? No formula answers that for a GEE with dozens of slopes,
clustered patients, missed sessions and a data cut-off, so the answer is simulated: each
*replicate* draws a data set with :func:`~engagekit.simulation.simulate_encounters` in
which ``attribute``'s effect on ``target`` is ``deviation`` log-odds per rating point
larger in ``treatment`` than elsewhere (the scale of the equivalence margin), runs the
analysis and keeps its verdicts. Then

- **power to detect** (``power_differs``) is the share of replicates in which
  ``attribute`` is called ``differs``; with ``deviation = 0`` it is that attribute's
  false-positive rate;
- the **false-flag rate** is the share of replicates in which any *other* attribute,
  whose effect truly is the same everywhere, is called ``differs``;
- **power to establish equivalence** (``power_equivalence``) is the share of the other
  attributes called ``equivalent``, averaged over them.

Replicate ``r`` uses seed ``seed + r``, so the result does not depend on the number of
processes, and different sample sizes reuse the same seeds. Each process runs its
linear algebra on one thread: the replicates are the parallel work, and a multi-threaded
BLAS fighting the other processes for the cores made a replicate several times slower.

:func:`power_config` shapes the simulated study (which treatments, how many sessions),
:func:`estimate_power` gives the power for one number of patients and
:func:`patients_for_power` searches for the number of patients that reaches a power.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Annotated, Any, ClassVar

from joblib import delayed
from pydantic import Field
from threadpoolctl import threadpool_limits

from .._results import Location, Record, Result
from .._stats import wilson_interval
from .._versions import library_versions
from ..cluster import replicate_backend, run_replicates
from ..config import Config, HeterogeneitySettings
from ..errors import AnalysisError, ConfigError, ContractError
from ..simulation import Heterogeneity, simulate_encounters
from ._analysis import analysis_settings, heterogeneity_analysis

__all__ = [
    "PatientsForPowerResult",
    "PowerPoint",
    "PowerResult",
    "PowerSettings",
    "Share",
    "estimate_power",
    "patients_for_power",
    "power_config",
]

#: Fewest patients :func:`estimate_power` accepts: below this the GEE cannot be fitted.
MIN_PATIENTS = 20
#: Fewest planned sessions :func:`power_config` accepts: the last planned session has no
#: outcome, so one session gives no data.
MIN_SESSIONS = 2
#: Options of :func:`~engagekit.heterogeneity.heterogeneity_analysis` that
#: :func:`estimate_power` passes on (they override the config's ``heterogeneity`` block).
ANALYSIS_OPTIONS = tuple(HeterogeneitySettings.model_fields)

_CI_LEVEL = 0.95
#: Libraries whose versions a power study records.
_LIBRARIES = ("engagekit", "statsmodels", "numpy")
# How many distinct failure messages a result quotes, so a user can see why replicates
# failed without the result growing with the number of replicates.
_FAILURE_EXAMPLES = 3

Progress = Callable[[int, int], None]
Count = Annotated[int, Field(ge=0)]
Proportion = Annotated[float, Field(ge=0.0, le=1.0)]


# --------------------------------------------------------------------------- the results
class Share(Record):
    """A share of the successful replicates, with its 95% Wilson interval; all None when
    none succeeded (or the share does not apply).

    Examples
    --------
    >>> Share(value=0.8, ci_low=0.74, ci_high=0.85).ci_low
    0.74
    """

    value: Proportion | None
    ci_low: Proportion | None
    ci_high: Proportion | None


_SHARE_PARTS = ("ci_low", "ci_high")


def _flat_shares(record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``record`` (a model's dump) with each :class:`Share` ``name`` written as ``name``,
    ``name_ci_low`` and ``name_ci_high``, in place."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in names:
            out[key] = value["value"]
            out.update({f"{key}_{part}": value[part] for part in _SHARE_PARTS})
        else:
            out[key] = value
    return out


def _nested_shares(data: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    """The inverse of :func:`_flat_shares` (anything it cannot place is left as it is)."""
    if not isinstance(data, Mapping):
        return data
    flat = {f"{name}_{part}" for name in names for part in _SHARE_PARTS}
    out = {key: value for key, value in data.items() if key not in flat}
    for name in names:
        parts = {part: data[f"{name}_{part}"] for part in _SHARE_PARTS if f"{name}_{part}" in data}
        if name in data:
            parts["value"] = data[name]
        if parts:
            out[name] = parts
    return out


def _share_location(location: Location, names: tuple[str, ...]) -> Location:
    if len(location) >= 2 and location[0] in names:
        key = location[0] if location[1] == "value" else f"{location[0]}_{location[1]}"
        return (key, *location[2:])
    return location


class PowerSettings(Record):
    """Everything needed to repeat a power study, with the library versions."""

    target: str
    attribute: str
    treatment: str
    deviation: float
    deviation_unit: str
    treatments: list[str]
    shares: dict[str, float]
    planned_sessions: dict[str, list[int]]
    analysis: HeterogeneitySettings
    seed: int
    replicate_seeds: str
    n_jobs: int
    versions: dict[str, str]


class PowerResult(Result):
    """The power of the cross-treatment test for one number of patients:
    :func:`estimate_power`.

    Attributes
    ----------
    n_patients, reps : int
        Patients per simulated study, and simulated studies.
    succeeded, failed : int
        Replicates whose analysis gave verdicts, and those whose analysis raised
        (left out of every share).
    failure_examples : list of str
        Up to three distinct messages of the failed replicates.
    power_differs : Share
        ``attribute`` called ``differs``.
    power_named : Share
        ``treatment`` named by the closed tests as where ``attribute`` differs; None
        when the deviation is 0.
    false_flag_rate : Share
        At least one other attribute called ``differs``.
    wrong_name_rate : Share
        A treatment named that does not deviate: another than ``treatment`` for
        ``attribute`` (any, when the deviation is 0), or any for another attribute.
        Under the null it is the family-wise error of the names. Under a deviation it
        also counts its echo: every other treatment then deviates from the mean of the
        rest by ``-deviation / (K - 1)``, which a large study names too (see the
        attribute's ``rest_equal_p``).
    power_equivalence : Share
        The other attributes called ``equivalent``, averaged over them (its CI counts
        each replicate once).
    power_any_other_equivalent : Share
        At least one other attribute called ``equivalent``.
    power_equivalence_attribute : Share
        ``attribute`` itself called ``equivalent``; only when the deviation is 0.
    attribute_verdicts : dict of str to float or None
        The share of each verdict for ``attribute``.
    equivalence_by_attribute : dict of str to float or None
        The share called ``equivalent``, per other attribute.
    settings : PowerSettings
    seconds : float

    Notes
    -----
    In the JSON form (:meth:`to_dict`) each share ``name`` is written as ``name``,
    ``name_ci_low`` and ``name_ci_high``.

    Examples
    --------
    >>> from engagekit.config import load_config
    >>> config = power_config(load_config(), ["cbt_online", "usual_care"], sessions=6)
    >>> result = estimate_power(60, config=config, reps=2, n_jobs=1)
    >>> result.reps, result.succeeded + result.failed
    (2, 2)
    >>> PowerResult.from_dict(result.to_dict()) == result
    True
    >>> PowerResult.from_dict({**result.to_dict(), "format_version": 9})
    Traceback (most recent call last):
    ...
    engagekit.errors.ResultFormatError: a power result is not valid: its 'format_version' is 9; ...
    """

    _what: ClassVar[str] = "a power result"
    #: 2: the treatments named by the closed tests, MI
    FORMAT_VERSION: ClassVar[int] = 2
    _SHARES: ClassVar[tuple[str, ...]] = (
        "power_differs",
        "power_named",
        "false_flag_rate",
        "wrong_name_rate",
        "power_equivalence",
        "power_any_other_equivalent",
        "power_equivalence_attribute",
    )

    n_patients: Annotated[int, Field(ge=1)]
    reps: Annotated[int, Field(ge=1)]
    succeeded: Count
    failed: Count
    failure_examples: list[str]
    power_differs: Share
    power_named: Share
    false_flag_rate: Share
    wrong_name_rate: Share
    power_equivalence: Share
    power_any_other_equivalent: Share
    power_equivalence_attribute: Share
    attribute_verdicts: dict[str, Proportion | None]
    equivalence_by_attribute: dict[str, Proportion | None]
    settings: PowerSettings
    seconds: float

    def _json(self) -> dict[str, Any]:
        return _flat_shares(self.model_dump(), self._SHARES)

    @classmethod
    def _fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        return _nested_shares(data, cls._SHARES)

    @classmethod
    def _json_location(cls, location: Location) -> Location:
        return _share_location(location, cls._SHARES)


class PowerPoint(Record):
    """One number of patients tried by :func:`patients_for_power`: its power to detect
    the deviation (with its CI), false-flag rate, power to show equivalence and failed
    replicates, from its :class:`PowerResult`."""

    _SHARES: ClassVar[tuple[str, ...]] = ("power_differs",)

    n_patients: Annotated[int, Field(ge=1)]
    power_differs: Share
    false_flag_rate: Proportion | None
    power_equivalence: Proportion | None
    failed: Count


class PatientsForPowerResult(Result):
    """The smallest number of patients that reaches a power: :func:`patients_for_power`.

    Attributes
    ----------
    target_power : float
    reached : bool
        False when even ``high`` patients fall short.
    n_patients : int or None
        The answer (None when not reached).
    power : Share
        Its estimated power to detect the deviation (all None when not reached).
    bracketed : bool
        False when ``low`` already reached the goal, so fewer patients might too.
    points : list of PowerPoint
        Every number of patients tried, in increasing order.
    low, high, tolerance, reps : int
        The search's settings.
    sentence : str
        The answer in words.
    settings : PowerSettings
        Those of the first estimate.
    seconds : float

    Notes
    -----
    In the JSON form (:meth:`to_dict`) the answer's power is written as ``power``,
    ``power_ci_low`` and ``power_ci_high``, and a point's ``power_differs`` likewise.
    """

    _what: ClassVar[str] = "a sample-size search"

    target_power: Annotated[float, Field(gt=0.0, lt=1.0)]
    reached: bool
    n_patients: Annotated[int, Field(ge=1)] | None
    power: Share
    bracketed: bool
    points: list[PowerPoint]
    low: Annotated[int, Field(ge=1)]
    high: Annotated[int, Field(ge=1)]
    tolerance: Annotated[int, Field(ge=1)]
    reps: Annotated[int, Field(ge=1)]
    sentence: str
    settings: PowerSettings
    seconds: float

    def _json(self) -> dict[str, Any]:
        out = _flat_shares(self.model_dump(), ("power",))
        out["points"] = [
            _flat_shares(point.model_dump(), PowerPoint._SHARES) for point in self.points
        ]
        return out

    @classmethod
    def _fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        out = _nested_shares(data, ("power",))
        if isinstance(out.get("points"), list):
            out["points"] = [_nested_shares(point, PowerPoint._SHARES) for point in out["points"]]
        return out

    @classmethod
    def _json_location(cls, location: Location) -> Location:
        if location[:1] == ("points",) and len(location) >= 3:
            return (*location[:2], *_share_location(location[2:], PowerPoint._SHARES))
        return _share_location(location, ("power",))


# --------------------------------------------------------------------------- study design
def power_config(
    config: Config, treatments: list[str] | None = None, sessions: int | None = None
) -> Config:
    """The config of a simulated study with some treatments and a fixed number of sessions.

    Parameters
    ----------
    config : Config
        The configuration to start from.
    treatments : list of str, optional
        The treatments the study compares (at least two), kept in the config's order; the
        others are left out and the kept ones' ``simulated.share`` values are rescaled to
        sum to 1 (keeping their ratios). All of them when omitted.
    sessions : int, optional
        Planned sessions of every treatment (``simulated.planned_sessions`` becomes
        ``[sessions, sessions]``), at least 2 because the last planned session has no
        outcome. Missed sessions and the data cut-off still end some episodes early.
        Each treatment keeps its own range when omitted.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        A treatment is unknown or listed twice (the message lists the valid ones), fewer
        than two treatments are given, or ``sessions`` is not a whole number >= 2.

    Examples
    --------
    >>> from engagekit.config import load_config
    >>> cfg = power_config(load_config(), ["cbt_online", "usual_care"], sessions=6)
    >>> cfg.treatment_names
    ['cbt_online', 'usual_care']
    >>> [t.simulated.planned_sessions for t in cfg.treatments]
    [(6, 6), (6, 6)]
    >>> power_config(load_config(), ["cbt_online", "yoga"])
    Traceback (most recent call last):
    ...
    engagekit.errors.ConfigError: unknown treatment(s) ['yoga']; choose among: antidepressants, cbt_face_to_face, cbt_online, facilitated_physical_activity, listening_visits, usual_care
    """  # noqa: E501
    kept = _kept_treatments(config, treatments)
    if sessions is not None:
        _check_whole("sessions", sessions, MIN_SESSIONS, ConfigError)
    total_share = sum(t.simulated.share for t in config.treatments if t.name in kept)
    updated = []
    for treatment in config.treatments:
        if treatment.name not in kept:
            continue
        simulated: dict[str, object] = {"share": treatment.simulated.share / total_share}
        if sessions is not None:
            simulated["planned_sessions"] = (int(sessions), int(sessions))
        updated.append(
            treatment.model_copy(
                update={"simulated": treatment.simulated.model_copy(update=simulated)}
            )
        )
    return config.model_copy(update={"treatments": updated})


def _kept_treatments(config: Config, treatments: list[str] | None) -> set[str]:
    if treatments is None:
        return set(config.treatment_names)
    if isinstance(treatments, str):
        raise ConfigError(
            f"treatments must be a list of treatment names, found the string {treatments!r}"
        )
    treatments = list(treatments)
    unknown = [t for t in treatments if t not in config.treatment_names]
    if unknown:
        raise ConfigError(
            f"unknown treatment(s) {unknown}; choose among: {', '.join(config.treatment_names)}"
        )
    repeated = sorted({t for t in treatments if treatments.count(t) > 1})
    if repeated:
        raise ConfigError(f"treatment(s) {repeated} are listed more than once")
    if len(treatments) < 2:
        raise ConfigError(
            f"comparing effects across treatments needs at least two treatments, found {treatments}"
        )
    return set(treatments)


# --------------------------------------------------------------------------- one size
def estimate_power(
    n_patients: int,
    *,
    config: Config,
    target: str = "adherent",
    attribute: str = "active_listening",
    treatment: str | None = None,
    deviation: float = 0.3,
    reps: int = 200,
    seed: int = 0,
    n_jobs: int = -1,
    scheduler: str | None = None,
    progress: Progress | None = None,
    **analysis_options: Any,
) -> PowerResult:
    """Power of the cross-treatment test for one number of patients, by simulation.

    Parameters
    ----------
    n_patients : int
        Patients per simulated study, at least 20.
    config : Config
        The simulated study: attributes, treatments with their shares and sessions (see
        :func:`power_config`), simulation settings, and the analysis settings (its
        ``heterogeneity`` block).
    target : {"adherent", "attended_next"}
        The outcome analysed, and the one the deviation applies to.
    attribute : str
        The quality whose effect deviates in ``treatment``.
    treatment : str, optional
        The treatment in which it deviates. Default: the treatment with the smallest
        simulated share (the first such): with the fewest patients, it is usually the
        hardest one in which to see a deviation, so the power is on the safe side.
    deviation : float
        Extra log-odds per point of the configured rating scale (the scale of the
        equivalence margin) of ``attribute`` on ``target`` in ``treatment``. With 0,
        ``power_differs`` is the false-positive rate of ``attribute``.
    reps : int
        Simulated studies, at least 1. The 95% CI of a power near 0.8 is about
        ±0.06 with 200 replicates and ±0.03 with 800.
    seed : int
        Replicate ``r`` simulates with seed ``seed + r``; the result does not depend on
        ``n_jobs``.
    n_jobs : int
        Processes (joblib); -1 for all cores, 1 to run in this process.
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``): the
        replicates run on its workers (every worker thread; ``n_jobs`` is then unused).
        Default: ``$DASK_SCHEDULER_ADDRESS`` if set, else this machine
        (:func:`engagekit.cluster.replicate_backend`). The result is the same wherever
        the replicates run.
    progress : callable, optional
        Called as ``progress(done, total)`` each time a replicate finishes.
    **analysis_options
        ``margin``, ``alpha``, ``adjustment``, ``test``, ``cluster``,
        ``working_correlation``, ``cov_type``: passed to
        :func:`~engagekit.heterogeneity.heterogeneity_analysis`, overriding the config.

    Returns
    -------
    PowerResult
        ``n_patients``, ``reps``, ``succeeded``; ``failed``: replicates whose
        analysis raised :class:`~engagekit.errors.AnalysisError` (no converged fit) or
        :class:`~engagekit.errors.ContractError` (fewer than two treatments with
        analysable encounters), left out of the shares below, with up to three of their
        messages in ``failure_examples``. Shares of the successful replicates, each a
        :class:`Share` with its 95% Wilson interval (all None when none succeeded):

        - ``power_differs``: ``attribute`` called ``differs``;
        - ``false_flag_rate``: at least one other attribute called ``differs``;
        - ``power_equivalence``: the other attributes called ``equivalent``, averaged
          over them; its CI counts each replicate once (conservative, since the
          attributes of one data set are not independent);
        - ``power_equivalence_attribute``: ``attribute`` itself called ``equivalent``;
          only when ``deviation`` is 0, else None.

        Also ``attribute_verdicts`` (share of each verdict for ``attribute``),
        ``equivalence_by_attribute`` (share ``equivalent`` per other attribute),
        ``settings`` (everything needed to repeat the run, with versions) and
        ``seconds``.

    Raises
    ------
    ValueError
        ``n_patients``, ``reps`` or ``n_jobs`` is out of range, or ``deviation`` is not a
        finite number.
    ArgumentError
        An analysis option is unknown or has a bad value (see
        :func:`~engagekit.heterogeneity._analysis.analysis_settings`).
    ConfigError
        ``target``, ``attribute`` or ``treatment`` is not in the config (the message lists
        the valid ones), or the config cannot be simulated or analysed.

    Examples
    --------
    >>> from engagekit.config import load_config
    >>> estimate_power(500, config=load_config(), attribute="warmth", reps=1)
    Traceback (most recent call last):
    ...
    engagekit.errors.ConfigError: unknown attribute 'warmth'; choose among: approachability, empathy, support, active_listening, decision_making, self_kindness
    """  # noqa: E501
    started = time.perf_counter()
    _check_whole("n_patients", n_patients, MIN_PATIENTS, ValueError)
    _check_whole("reps", reps, 1, ValueError)
    _check_n_jobs(n_jobs)
    _check_deviation(deviation)
    _check_choice("target", target, config.outcome_names)
    _check_choice("attribute", attribute, config.attribute_names)
    treatment = _default_treatment(config) if treatment is None else treatment
    _check_choice("treatment", treatment, config.treatment_names)
    config = _with_analysis_options(config, analysis_options)
    _check_simulable(config, target, seed)

    effect = Heterogeneity(attribute, treatment, float(deviation), (target,))
    replicate = partial(
        _replicate,
        n_patients=int(n_patients),
        config=config,
        target=target,
        effect=effect,
    )
    with replicate_backend(scheduler):
        outcomes = _run_replicates(replicate, int(seed), int(reps), n_jobs, progress)
    return PowerResult(
        n_patients=int(n_patients),
        reps=int(reps),
        **_summarise(outcomes, config.attribute_names, attribute, treatment, float(deviation)),
        settings=_settings(config, target, attribute, treatment, deviation, seed, n_jobs),
        seconds=round(time.perf_counter() - started, 3),
    )


def _default_treatment(config: Config) -> str:
    return min(config.treatments, key=lambda t: t.simulated.share).name


def _with_analysis_options(config: Config, options: dict[str, Any]) -> Config:
    """The config with the analysis options laid over its ``heterogeneity`` block."""
    settings = analysis_settings(config.heterogeneity, **options)
    return config.model_copy(update={"heterogeneity": settings})


def _check_simulable(config: Config, target: str, seed: int) -> None:
    """Refuse, before any replicate runs, a config whose data the analysis cannot read.

    A tiny simulation raises the simulator's own ConfigError for bad simulation
    settings, and shows whether every column the analysis needs is simulated (a
    covariate the simulator does not make would fail every replicate the same way).
    """
    columns = set(simulate_encounters(MIN_PATIENTS, seed=seed, config=config).encounters)
    needed = ["treatment", "patient_id", "practitioner_id", target, *config.covariates]
    absent = [c for c in needed if c not in columns]
    if absent:
        raise ConfigError(
            f"the simulator makes no column(s) {absent}, which the analysis needs; remove "
            "them from the config's covariates for the power analysis"
        )


# --------------------------------------------------------------------------- replicates
#: One replicate's outcome: per attribute its verdict and the treatments it names.
Verdicts = tuple[tuple[str, tuple[str, ...]], ...]


def _replicate(
    index: int,
    *,
    n_patients: int,
    config: Config,
    target: str,
    effect: Heterogeneity,
    seed: int,
) -> tuple[int, Verdicts | None, str | None]:
    """Simulate and analyse one study (the analysis a user would run, without the
    sensitivity analysis); keep only its verdicts and named treatments (or why it
    failed)."""
    with threadpool_limits(limits=1):
        encounters = simulate_encounters(
            n_patients, seed=seed, config=config, heterogeneity=[effect]
        ).encounters
        try:
            result = heterogeneity_analysis(
                encounters, target, config, seed=seed, sensitivity=False
            )
        except (AnalysisError, ContractError) as e:
            return index, None, f"{type(e).__name__}: {e}"
    return index, tuple((a.verdict, tuple(a.deviating)) for a in result.attributes), None


def _run_replicates(
    replicate: Callable[..., tuple[int, Verdicts | None, str | None]],
    seed: int,
    reps: int,
    n_jobs: int,
    progress: Progress | None,
) -> list[tuple[Verdicts | None, str | None]]:
    """Every replicate's verdicts or failure message, in replicate order.

    joblib batches the short tasks itself; results arrive in any order and are put back
    in place, so the summary does not depend on which process finished first.
    """
    outcomes: list[Any] = [None] * reps
    tasks = (delayed(replicate)(r, seed=seed + r) for r in range(reps))
    finished = run_replicates(tasks, n_jobs=n_jobs, return_as="generator_unordered")
    for done, (index, verdicts, failure) in enumerate(finished, start=1):
        outcomes[index] = (verdicts, failure)
        if progress is not None:
            progress(done, reps)
    return outcomes


# --------------------------------------------------------------------------- summary
def _summarise(
    outcomes: list[tuple[Verdicts | None, str | None]],
    attribute_names: list[str],
    attribute: str,
    treatment: str,
    deviation: float,
) -> dict[str, Any]:
    """Shares of verdicts and named treatments over the successful replicates, and the
    failures."""
    named = [v for v, _ in outcomes if v is not None]
    failures = [f for _, f in outcomes if f is not None]
    verdicts = [tuple(verdict for verdict, _ in v) for v in named]
    n = len(verdicts)
    k = attribute_names.index(attribute)
    others = [j for j in range(len(attribute_names)) if j != k]

    def count(verdict: str, j: int) -> int:
        return sum(v[j] == verdict for v in verdicts)

    def wrongly_named(v: Verdicts) -> bool:
        """A treatment named that does not deviate: any but the planted one for the
        attribute (every one without a deviation), any for another attribute."""
        planted = {treatment} if deviation != 0 else set()
        return bool(set(v[k][1]) - planted) or any(v[j][1] for j in others)

    flagged = sum(any(v[j] == "differs" for j in others) for v in verdicts)
    # None with a single attribute: there is no other attribute to be equivalent
    equivalent = sum(count("equivalent", j) for j in others) / len(others) if others else None
    any_equivalent = sum(any(v[j] == "equivalent" for j in others) for v in verdicts)
    return {
        "succeeded": n,
        "failed": len(failures),
        "failure_examples": list(dict.fromkeys(failures))[:_FAILURE_EXAMPLES],
        "power_differs": _share(count("differs", k), n),
        "power_named": _share(
            sum(treatment in v[k][1] for v in named) if deviation != 0 else None, n
        ),
        "false_flag_rate": _share(flagged, n),
        "wrong_name_rate": _share(sum(wrongly_named(v) for v in named), n),
        "power_equivalence": _share(equivalent, n),
        "power_any_other_equivalent": _share(any_equivalent if others else None, n),
        "power_equivalence_attribute": _share(
            count("equivalent", k) if deviation == 0 else None, n
        ),
        "attribute_verdicts": {
            verdict: _ratio(count(verdict, k), n)
            for verdict in ("differs", "equivalent", "inconclusive")
        },
        "equivalence_by_attribute": {
            attribute_names[j]: _ratio(count("equivalent", j), n) for j in others
        },
    }


def _ratio(successes: float, n: int) -> float | None:
    return successes / n if n else None


def _share(successes: float | None, n: int) -> Share:
    """A share with its Wilson interval (all None without successful replicates)."""
    if successes is None or n == 0:
        return Share(value=None, ci_low=None, ci_high=None)
    low, high = wilson_interval(successes, n, _CI_LEVEL)
    return Share(value=successes / n, ci_low=float(low), ci_high=float(high))


def _settings(
    config: Config,
    target: str,
    attribute: str,
    treatment: str,
    deviation: float,
    seed: int,
    n_jobs: int,
) -> PowerSettings:
    return PowerSettings(
        target=target,
        attribute=attribute,
        treatment=treatment,
        deviation=float(deviation),
        deviation_unit="log-odds per rating point, on the target outcome only",
        treatments=config.treatment_names,
        shares={t.name: t.simulated.share for t in config.treatments},
        planned_sessions={t.name: list(t.simulated.planned_sessions) for t in config.treatments},
        analysis=config.heterogeneity,
        seed=int(seed),
        replicate_seeds="seed + replicate index",
        n_jobs=int(n_jobs),
        versions=library_versions(_LIBRARIES),
    )


# --------------------------------------------------------------------------- sample size
def patients_for_power(
    target_power: float = 0.8,
    *,
    config: Config,
    low: int = 100,
    high: int = 20000,
    tolerance: int = 50,
    reps: int = 200,
    seed: int = 0,
    n_jobs: int = -1,
    scheduler: str | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    **power_options: Any,
) -> PatientsForPowerResult:
    """The smallest number of patients whose power to detect the deviation reaches a goal.

    Power is estimated with :func:`estimate_power` at ``low``, ``2 low``, ``4 low``, …
    (the last step capped at ``high``) until it reaches ``target_power``; then the
    number is bisected between the last size below the goal and the first at or above
    it, on steps of ``tolerance`` patients from ``low``, until the two are
    ``tolerance`` apart. Every size uses the same replicate seeds (common random
    numbers), which keeps the estimated curve smoother than independent draws would.
    Each estimate has sampling error (see its CI), so the answer is as precise as
    ``reps`` allows, not as ``tolerance`` suggests.

    Parameters
    ----------
    target_power : float
        The power wanted, between 0 and 1.
    config : Config
        The simulated study (see :func:`power_config`).
    low, high : int
        The smallest and largest number of patients to try; ``20 <= low <= high``.
    tolerance : int
        Precision of the answer in patients, at least 1.
    reps, seed, n_jobs, scheduler
        As in :func:`estimate_power`, for every size tried.
    progress : callable, optional
        Called as ``progress(n_patients, done, total)`` as the replicates of the size
        being tried finish.
    **power_options
        ``target``, ``attribute``, ``treatment``, ``deviation`` (not 0) and the analysis
        options of :func:`estimate_power`.

    Returns
    -------
    PatientsForPowerResult
        ``target_power``; ``reached`` (False when even ``high`` patients fall
        short, rather than an error); ``n_patients``, the answer (None when not reached),
        with its ``power`` and CI; ``bracketed`` (False when ``low`` already reached the
        goal, so fewer patients might too); ``low``, ``high``, ``tolerance``, ``reps``;
        ``points``, every size tried in increasing order with ``power_differs``, its CI,
        ``false_flag_rate``, ``power_equivalence`` and ``failed``; ``sentence``;
        ``settings`` (of the first estimate) and ``seconds``.

    Raises
    ------
    ValueError
        ``target_power`` is not between 0 and 1, ``low``, ``high`` or ``tolerance`` is
        out of range, or ``deviation`` is 0 (nothing to detect); and whatever
        :func:`estimate_power` refuses.
    """
    started = time.perf_counter()
    _check_search(target_power, low, high, tolerance)
    if power_options.get("deviation") == 0:
        raise ValueError(
            "patients_for_power needs a non-zero deviation: with none there is nothing to "
            "detect; use estimate_power for the false-positive rate"
        )
    search = _PowerSearch(
        target_power,
        partial(
            estimate_power,
            config=config,
            reps=reps,
            seed=seed,
            n_jobs=n_jobs,
            scheduler=scheduler,
            **power_options,
        ),
        progress,
    )
    below, above = search.double_from(int(low), int(high))
    if above is not None and below is not None:
        below, above = search.bisect(below, above, int(tolerance))
    answer = search.points[above] if above is not None else None
    power = (
        answer.power_differs if answer is not None else Share(value=None, ci_low=None, ci_high=None)
    )
    points = [search.point(n) for n in sorted(search.points)]
    bracketed = below is not None and above is not None
    return PatientsForPowerResult(
        target_power=float(target_power),
        reached=answer is not None,
        n_patients=above,
        power=power,
        bracketed=bracketed,
        points=points,
        low=int(low),
        high=int(high),
        tolerance=int(tolerance),
        reps=int(reps),
        sentence=_search_sentence(
            float(target_power),
            above,
            power,
            bracketed,
            points,
            int(low),
            int(high),
            int(tolerance),
            int(reps),
        ),
        settings=search.points[min(search.points)].settings,
        seconds=round(time.perf_counter() - started, 3),
    )


def _check_search(target_power: float, low: int, high: int, tolerance: int) -> None:
    if not 0 < target_power < 1:
        raise ValueError(f"target_power must be between 0 and 1, found {target_power!r}")
    _check_whole("low", low, MIN_PATIENTS, ValueError)
    _check_whole("high", high, int(low), ValueError)
    _check_whole("tolerance", tolerance, 1, ValueError)


class _PowerSearch:
    """The sizes tried so far and whether each reached the goal."""

    def __init__(
        self,
        target_power: float,
        estimate: Callable[..., PowerResult],
        progress: Callable[[int, int, int], None] | None,
    ) -> None:
        self.target_power = target_power
        self.estimate = estimate
        self.progress = progress
        self.points: dict[int, PowerResult] = {}

    def reaches(self, n: int) -> bool:
        """Estimate the power with ``n`` patients; does it reach the goal?"""
        if n not in self.points:
            callback = None
            if self.progress is not None:
                callback = partial(self.progress, n)
            self.points[n] = self.estimate(n, progress=callback)
        power = self.points[n].power_differs.value
        return power is not None and power >= self.target_power

    def double_from(self, low: int, high: int) -> tuple[int | None, int | None]:
        """The last size below the goal and the first reaching it (None if none)."""
        below, n = None, low
        while True:
            if self.reaches(n):
                return below, n
            if n >= high:
                return n, None
            below, n = n, min(2 * n, high)

    def bisect(self, below: int, above: int, tolerance: int) -> tuple[int, int]:
        """Narrow ``[below, above]`` to ``tolerance`` on steps of ``tolerance`` from
        ``below``."""
        while above - below > tolerance:
            steps = (above - below) // tolerance
            middle = below + tolerance * max(1, steps // 2)
            if middle >= above:
                break
            if self.reaches(middle):
                above = middle
            else:
                below = middle
        return below, above

    def point(self, n: int) -> PowerPoint:
        """The point of ``n`` patients, from its estimate."""
        estimate = self.points[n]
        return PowerPoint(
            n_patients=n,
            power_differs=estimate.power_differs,
            false_flag_rate=estimate.false_flag_rate.value,
            power_equivalence=estimate.power_equivalence.value,
            failed=estimate.failed,
        )


def _search_sentence(
    target_power: float,
    n_patients: int | None,
    power: Share,
    bracketed: bool,
    points: list[PowerPoint],
    low: int,
    high: int,
    tolerance: int,
    reps: int,
) -> str:
    goal = f"{target_power:.0%} power"
    if n_patients is None:
        best = max(points, key=lambda p: p.power_differs.value or 0.0)
        return (
            f"Even {high:,} patients do not reach {goal} (best estimate "
            f"{best.power_differs.value or 0.0:.0%} with {best.n_patients:,}); raise `high`, "
            "or study a larger deviation, fewer treatments or more sessions."
        )
    sentence = (
        f"About {n_patients:,} patients reach {goal} (estimated "
        f"{power.value:.0%}, 95% CI {power.ci_low:.0%} to {power.ci_high:.0%}, "
        f"{reps} simulated studies)"
    )
    if not bracketed:
        return (
            f"{sentence}; {low:,}, the smallest number tried, already does, so fewer "
            "patients may too: lower `low`."
        )
    return sentence + f"; {n_patients - tolerance:,} or fewer do not."


# --------------------------------------------------------------------------- checks
def _check_whole(name: str, value: Any, minimum: int, error: type[Exception]) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise error(f"{name} must be a whole number >= {minimum}, found {value!r}")


def _check_n_jobs(n_jobs: Any) -> None:
    if n_jobs != -1:
        _check_whole("n_jobs", n_jobs, 1, ValueError)


def _check_deviation(deviation: Any) -> None:
    if (
        isinstance(deviation, bool)
        or not isinstance(deviation, numbers.Real)
        or not math.isfinite(deviation)
    ):
        raise ValueError(
            f"deviation must be a finite number of log-odds per rating point, found {deviation!r}"
        )


def _check_choice(what: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose among: {', '.join(choices)}")
