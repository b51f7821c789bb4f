r"""The generator of simulated encounter tables with known true probabilities.

Every parameter comes from the config (``attributes.items[*].simulated``,
``treatments[*].simulated`` and the ``simulation:`` block); nothing is hard-coded here
except the shape of the model below. Effects and rating settings are stated on the
default 1-5 scale and mapped to the configured scale ``[lo, hi]`` with
``u = (hi - lo) / 4`` configured points per default point, so a service with a 0-10
instrument gets the same patients on a finer scale.

The generative model
--------------------
**Patients.** Treatment drawn with probabilities proportional to
``treatments[*].simulated.share``; ``age_band`` and ``gender`` from
``simulation.age_band.shares`` and ``simulation.gender.shares``. The first session is on
``start_date`` + a uniform whole number of days in ``[0, enrolment_days)``, which the
simulator requires to be on or before the cut-off (``enrolment_days <= cutoff_days``),
so every requested patient has at least one encounter. The planned number of sessions is
uniform in the treatment's ``planned_sessions`` ``[low, high]``.

**Practitioners.** Each treatment has ``max(2, ceil(n_t / patients_per_practitioner))``
practitioners for its ``n_t`` patients, each with a role drawn from the treatment's
``roles`` weights. A patient sees one practitioner, drawn uniformly from the pool, for
the whole episode. Practitioner effects ``q_p ~ N(0, practitioner_sd^2)`` on all ratings
and ``q_pa ~ N(0, practitioner_attribute_sd^2)`` per attribute (good at empathy, poor at
decision-making).

**Ratings** (``simulation.rating``). Patient effects ``g_i ~ N(0, patient_sd^2)`` and
``h_ia ~ N(0, patient_attribute_sd^2)``; a session swing shared by the attributes,
``s_i1 ~ N(0, session_sd^2)``,
``s_it = rho s_i,t-1 + sqrt(1 - rho^2) N(0, session_sd^2)`` (``rho = session_rho``);
item noise ``e_iat ~ N(0, noise_sd^2)``. The latent rating on 1-5 is

.. math::

    x_{iat} = mean + g_i + h_{ia} + q_p + q_{pa} + s_{it}
              + growth\_per\_log\_session \cdot \log t + e_{iat}

and the recorded rating is ``round(lo + (x - 1) u)`` clipped to the whole numbers of
``[lo, hi]``. Each rating is independently empty with ``missing_rating_rate``, and the
whole questionnaire is empty with ``missing_form_rate``.

An attribute with ``higher_is_better: false`` (a score where higher is worse, such as a
depression score) is the same latent quality recorded the other way round: ``x`` still
says how good things are, and the recorded score is ``m - round(lo + (x - 1) u)`` with
``m`` the sum of the lowest and highest whole numbers of the scale. So a patient who
rates the practitioner highly tends to have a low score, scores fall over the sessions
(``growth_per_log_session``), and on 0-63 they centre near 17 rather than 46.

**Outcome probabilities.** At session ``t``, for ``o`` in ``attended_next``,
``adherent`` (1 = the good outcome), using only what is recorded at or before ``t``:

.. math::

    logit\, p_o = intercept_o[treatment]
        + \sum_a (\beta_{ao} / u + extra_{a,treatment,o}) (r_{at} - ref)
        + missing\_rating_o \cdot m_t
        + (rating\_change_o / u) \frac{1}{K} \sum_a d_{at}
        + log\_session_o \log t + age\_band_o + b_i

where a missing ``r_at`` contributes 0, ``ref = lo + (reference - 1) u``, ``beta`` is
``attributes.items[*].simulated`` (per default-scale point), ``extra`` comes from
:class:`~engagekit.simulation.Heterogeneity` (per configured-scale point), ``m_t`` is
the number of empty ratings, ``d_at = r_at - r_a,t-1`` when both are recorded and 0
otherwise (0 at ``t = 1``), the age-band effect is 0 for bands not listed, and
``b_i ~ N(0, patient_frailty_sd^2)`` is shared by both outcomes. For an attribute with
``higher_is_better: false`` three terms turn round, so that ``simulated`` keeps its
meaning as the gain in log-odds per default-scale point *better*: its slope is
``-beta_ao / u + extra`` (a higher score lowers the chance of the good outcome; the
heterogeneity ``extra`` is added as given, per recorded point), ``ref`` is ``m - ref``
(the score at which the attribute contributes nothing), and ``d_at`` is
``-(r_at - r_a,t-1)`` (a falling score is an improvement). An outcome key missing
from an effect map (``simulated``, ``rating_change``, ...) means no effect; intercepts
are required. With the default ``patient_frailty_sd: 0`` the true probability is the
Bayes limit for the recorded data: a model with the right features can reach it.

**Episodes, outcomes, censoring.** The gap to the next session is the treatment's
``interval_days`` plus a uniform jitter of +/-2 days (+/-4 for intervals of 28 days or
more), never less than one day. At each encounter ``A ~ Bernoulli(p_attended_next)`` and
``H ~ Bernoulli(p_adherent)`` are drawn independently. Then:

* at the planned last session both outcomes are empty, ``next_session_due`` is 0 and the
  episode ends (``next_session_due`` is 1 at every other session);
* else, if the next session would fall after the cut-off (``start_date +
  cutoff_days``), both outcomes are empty (not yet known) and the episode is censored;
* else ``attended_next = A`` and ``adherent = H``, with ``adherent`` empty with
  ``missing_adherence_rate``; a missed session (``A = 0``) ends the episode.

Random numbers come from streams spawned from ``numpy.random.default_rng(seed)``, one
for patients and practitioners, one for ratings and one for visits, and every
per-session draw is made for every patient whether or not they are still in treatment.
So with the same seed and number of patients, changing an effect (say, adding a
heterogeneity) changes the outcomes and which rows exist but not the patients,
practitioners, ratings or uniform draws behind them: comparisons between scenarios share
common random numbers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import expit

from ..config import OUTCOME_NAMES, Config, load_config
from ..errors import ConfigError
from ._heterogeneity import Heterogeneity, _check_against_config

__all__ = ["SimulatedData", "simulate_encounters"]

# Jitter of the gap between sessions, in days: monthly GP reviews drift more than weekly
# therapy sessions.
_JITTER_WEEKLY = 2
_JITTER_MONTHLY = 4
_MONTHLY_FROM_DAYS = 28

# Minimum widths of the zero-padded identifiers, so small and large simulations look
# alike; the width grows when the numbers need more digits.
_PATIENT_ID_DIGITS = 7
_ENCOUNTER_ID_DIGITS = 8
_PRACTITIONER_ID_DIGITS = 3


class SimulatedData(NamedTuple):
    """A simulated encounter table and the true probabilities behind its outcomes.

    Attributes
    ----------
    encounters : pandas.DataFrame
        One row per attended encounter, in the layout of the encounter contract.
    truth : pandas.DataFrame
        ``encounter_id``, ``p_attended_next``, ``p_adherent``: the probabilities of the
        good outcome (1) from which each encounter's outcomes were drawn, one row per
        encounter in the same order, also where the recorded outcome is empty.
    """

    encounters: pd.DataFrame
    truth: pd.DataFrame


@dataclass(frozen=True)
class _Model:
    """The config's simulation settings as arrays, on the configured rating scale."""

    attribute_names: list[str]
    treatment_names: list[str]
    lo: float
    u: float
    ref: np.ndarray  # (K,) the recorded rating at which an attribute contributes nothing
    direction: np.ndarray  # (K,) 1.0 where higher is better, -1.0 where higher is worse
    rating_min: float
    rating_max: float
    treatment_share: np.ndarray  # (T,)
    planned_low: np.ndarray  # (T,)
    planned_high: np.ndarray  # (T,)
    interval_days: np.ndarray  # (T,)
    jitter_days: np.ndarray  # (T,)
    roles: list[tuple[list[str], np.ndarray]]  # per treatment: names, probabilities
    intercept: np.ndarray  # (2, T)
    coef: np.ndarray  # (2, T, K) per configured-scale point
    missing_rating: np.ndarray  # (2,)
    rating_change: np.ndarray  # (2,) per configured-scale point
    log_session: np.ndarray  # (2,)
    age_bands: list[str]
    age_share: np.ndarray
    age_effect: np.ndarray  # (2, n_age_bands)
    genders: list[str]
    gender_share: np.ndarray
    start_date: np.datetime64
    enrolment_days: int
    cutoff_days: int


def simulate_encounters(
    n_patients: int,
    seed: int = 0,
    config: Config | None = None,
    heterogeneity: Sequence[Heterogeneity] = (),
    progress: Callable[[int, int], None] | None = None,
    service_shift: tuple[float, float] = (0.0, 1.0),
) -> SimulatedData:
    """Simulate the encounters of ``n_patients`` episodes and the truth behind them.

    The generative model is described in :mod:`engagekit.simulation._simulator`.

    Parameters
    ----------
    n_patients : int
        Number of patients (episodes). Every patient has at least one encounter, so the
        table has exactly this many patients.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; the same seed and arguments give identical
        frames.
    config : Config, optional
        The settings (``attributes``, ``treatments``, ``simulation``); the defaults when
        omitted.
    heterogeneity : sequence of Heterogeneity, default ()
        Extra attribute effects in one treatment (see :func:`parse_heterogeneity`); a
        single Heterogeneity is taken as a sequence of one. Several entries for the same
        attribute, treatment and outcome add up.
    progress : callable, optional
        Called as ``progress(done, total)`` after each session step and once more when
        the tables are built, for a progress bar.
    service_shift : (float, float), default (0.0, 1.0)
        ``(intercept_delta, slope_factor)``: a new service whose truth differs from the
        config's, each outcome's true log-odds becoming ``intercept_delta + slope_factor
        * logit p_o`` (the miscalibration a model carried to another service shows,
        Steyerberg, *Clinical Prediction Models*, 2nd ed. 2019, ch. 20). The default
        leaves the service as configured; the ratings and uniform draws are the same
        whatever the shift (common random numbers).

    Returns
    -------
    SimulatedData
        ``encounters``: ``patient_id``, ``encounter_id``, ``session_number``,
        ``encounter_date``, ``treatment``, ``practitioner_id``, ``practitioner_role``,
        the configured attributes (float ratings, NaN when empty), ``age_band``,
        ``gender``, ``next_session_due`` (``Int8``: 0 at the planned last session, else 1),
        ``attended_next`` and ``adherent`` (``Int8``, ``<NA>`` when empty),
        sorted by patient and session. ``truth``: ``encounter_id``,
        ``p_attended_next``, ``p_adherent``, row for row.

    Raises
    ------
    ConfigError
        ``n_patients`` is not a whole number >= 1; a heterogeneity names an attribute or
        treatment the config lacks; the config's simulation settings cannot be simulated
        (intercept missing an outcome, enrolment running past the cut-off, a bad
        ``start_date``, a scale without two whole numbers). ``heterogeneity`` is a
        string rather than parsed specs.

    Examples
    --------
    >>> data = simulate_encounters(50, seed=1)
    >>> list(data.encounters.columns[:4])
    ['patient_id', 'encounter_id', 'session_number', 'encounter_date']
    >>> data.encounters["patient_id"].nunique()
    50
    >>> list(data.truth.columns)
    ['encounter_id', 'p_attended_next', 'p_adherent']

    Active listening mattering more in online CBT:

    >>> from engagekit.simulation import parse_heterogeneity
    >>> cfg = load_config()
    >>> het = [parse_heterogeneity("active_listening:cbt_online:0.5", cfg)]
    >>> data = simulate_encounters(50, seed=1, config=cfg, heterogeneity=het)

    A refusal:

    >>> simulate_encounters(0)
    Traceback (most recent call last):
    ...
    engagekit.errors.ConfigError: n_patients must be a whole number >= 1, found 0
    """
    if (
        isinstance(n_patients, bool)
        or not isinstance(n_patients, numbers.Integral)
        or n_patients < 1
    ):
        raise ConfigError(f"n_patients must be a whole number >= 1, found {n_patients!r}")
    n_patients = int(n_patients)
    shift = _service_shift(service_shift)
    cfg = load_config() if config is None else config
    if isinstance(heterogeneity, str):
        raise ConfigError(
            f"heterogeneity must be a sequence of Heterogeneity objects, found the string "
            f"{heterogeneity!r}; turn it into one with parse_heterogeneity(spec, config)"
        )
    if isinstance(heterogeneity, Heterogeneity):
        heterogeneity = (heterogeneity,)
    heterogeneity = tuple(heterogeneity)
    _check_against_config(heterogeneity, cfg)
    model = _build_model(cfg, heterogeneity)

    rng_people, rng_ratings, rng_visits = np.random.default_rng(seed).spawn(3)
    patients = _draw_patients(n_patients, model, cfg, rng_people)
    n_steps = int(model.planned_high.max())
    total = n_steps + 1
    steps = _run_sessions(patients, model, cfg, rng_ratings, rng_visits, n_steps, progress, shift)
    data = _assemble(patients, steps, model)
    if progress is not None:
        progress(total, total)
    return data


def _service_shift(shift: object) -> tuple[float, float]:
    """``(intercept_delta, slope_factor)`` as two finite floats, or a ConfigError."""
    try:
        delta, factor = (float(v) for v in shift)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ConfigError(
            f"service_shift must be two numbers (intercept_delta, slope_factor), found {shift!r}"
        ) from None
    if not (math.isfinite(delta) and math.isfinite(factor)):
        raise ConfigError(f"service_shift must be finite numbers, found {shift!r}")
    return delta, factor


def _build_model(cfg: Config, heterogeneity: Sequence[Heterogeneity]) -> _Model:
    sim = cfg.simulation
    lo, hi = float(cfg.attributes.scale.min), float(cfg.attributes.scale.max)
    u = cfg.attributes.scale.points_per_default_point
    rating_min, rating_max = math.ceil(lo), math.floor(hi)
    if rating_max <= rating_min:
        raise ConfigError(
            f"attributes.scale [{lo:g}, {hi:g}] holds fewer than two whole numbers; "
            "the simulator records whole-number ratings, so widen the scale"
        )
    if sim.enrolment_days > sim.cutoff_days:
        raise ConfigError(
            f"simulation.enrolment_days ({sim.enrolment_days}) is longer than "
            f"simulation.cutoff_days ({sim.cutoff_days}): patients enrolled after the "
            "cut-off would have no encounter; set enrolment_days <= cutoff_days"
        )
    try:
        start = np.datetime64(date.fromisoformat(sim.start_date), "D")
    except ValueError as e:
        raise ConfigError(
            f"simulation.start_date must be an ISO date such as '2025-01-06', found "
            f"{sim.start_date!r}"
        ) from e

    treatments = [t.simulated for t in cfg.treatments]
    n_treat = len(treatments)
    intercept = np.empty((len(OUTCOME_NAMES), n_treat))
    for j, (t, ts) in enumerate(zip(cfg.treatments, treatments, strict=True)):
        for o, outcome in enumerate(OUTCOME_NAMES):
            if outcome not in ts.intercept:
                raise ConfigError(
                    f"treatments[{t.name!r}].simulated.intercept has no {outcome!r}; "
                    f"give both {list(OUTCOME_NAMES)}"
                )
            intercept[o, j] = ts.intercept[outcome]

    beta = np.array(
        [[a.simulated.get(o, 0.0) for a in cfg.attributes.items] for o in OUTCOME_NAMES]
    )
    direction = np.array([1.0 if a.higher_is_better else -1.0 for a in cfg.attributes.items])
    # beta is per default-scale point better; one default point spans u configured
    # points, and where higher is worse a point better is a point lower.
    coef = np.repeat((direction * beta / u)[:, None, :], n_treat, axis=1)
    ref = lo + (sim.rating.reference - 1.0) * u
    # a score recorded the other way round is mirrored within the whole numbers
    mirror = float(rating_min + rating_max)
    for h in heterogeneity:
        a = cfg.attribute_names.index(h.attribute)
        j = cfg.treatment_names.index(h.treatment)
        for outcome in h.outcomes:
            coef[OUTCOME_NAMES.index(outcome), j, a] += h.extra_log_odds

    effects = sim.effects
    age = sim.age_band
    age_bands = list(age.shares)
    interval = np.array([ts.interval_days for ts in treatments])
    return _Model(
        attribute_names=cfg.attribute_names,
        treatment_names=cfg.treatment_names,
        lo=lo,
        u=u,
        ref=np.where(direction > 0, ref, mirror - ref),
        direction=direction,
        rating_min=float(rating_min),
        rating_max=float(rating_max),
        treatment_share=_normalise([ts.share for ts in treatments]),
        planned_low=np.array([ts.planned_sessions[0] for ts in treatments]),
        planned_high=np.array([ts.planned_sessions[1] for ts in treatments]),
        interval_days=interval,
        jitter_days=np.where(interval >= _MONTHLY_FROM_DAYS, _JITTER_MONTHLY, _JITTER_WEEKLY),
        roles=[(list(ts.roles), _normalise(list(ts.roles.values()))) for ts in treatments],
        intercept=intercept,
        coef=coef,
        missing_rating=np.array([effects.missing_rating.get(o, 0.0) for o in OUTCOME_NAMES]),
        rating_change=np.array([effects.rating_change.get(o, 0.0) / u for o in OUTCOME_NAMES]),
        log_session=np.array([effects.log_session.get(o, 0.0) for o in OUTCOME_NAMES]),
        age_bands=age_bands,
        age_share=_normalise(list(age.shares.values())),
        age_effect=np.array(
            [[age.effect.get(o, {}).get(b, 0.0) for b in age_bands] for o in OUTCOME_NAMES]
        ),
        genders=list(sim.gender.shares),
        gender_share=_normalise(list(sim.gender.shares.values())),
        start_date=start,
        enrolment_days=sim.enrolment_days,
        cutoff_days=sim.cutoff_days,
    )


def _normalise(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


@dataclass(frozen=True)
class _Patients:
    """Per-patient draws (index i) and per-practitioner draws (index p)."""

    treatment: np.ndarray  # (N,) treatment index
    age_band: np.ndarray  # (N,)
    gender: np.ndarray  # (N,)
    first_day: np.ndarray  # (N,) days after start_date of session 1
    planned: np.ndarray  # (N,)
    practitioner: np.ndarray  # (N,) global practitioner index
    general: np.ndarray  # (N,) g_i
    per_attribute: np.ndarray  # (N, K) h_ia
    frailty: np.ndarray  # (N,) b_i
    practitioner_ids: np.ndarray  # (P,) str
    role_names: list[str]  # every role of any treatment, once
    practitioner_role: np.ndarray  # (P,) index into role_names
    practitioner_general: np.ndarray  # (P,) q_p
    practitioner_attribute: np.ndarray  # (P, K) q_pa


def _draw_patients(n: int, model: _Model, cfg: Config, rng: np.random.Generator) -> _Patients:
    sim, rs = cfg.simulation, cfg.simulation.rating
    n_treat, n_attr = len(model.treatment_names), len(model.attribute_names)
    treatment = rng.choice(n_treat, size=n, p=model.treatment_share)
    age_band = rng.choice(len(model.age_bands), size=n, p=model.age_share)
    gender = rng.choice(len(model.genders), size=n, p=model.gender_share)
    first_day = rng.integers(0, model.enrolment_days, size=n)
    # Every patient's first session must fall within the data; _build_model refused
    # settings that would break this.
    assert first_day.max() <= model.cutoff_days
    planned = rng.integers(model.planned_low[treatment], model.planned_high[treatment] + 1)

    per_treatment = np.bincount(treatment, minlength=n_treat)
    n_prac = np.maximum(2, -(-per_treatment // sim.patients_per_practitioner))
    first_prac = np.concatenate([[0], np.cumsum(n_prac)[:-1]])
    width = max(_PRACTITIONER_ID_DIGITS, len(str(int(n_prac.max()))))
    all_roles = list(dict.fromkeys(r for names, _ in model.roles for r in names))
    ids, roles = [], []
    for j, name in enumerate(model.treatment_names):
        role_names, role_p = model.roles[j]
        ids += [f"{name}-{k:0{width}d}" for k in range(1, n_prac[j] + 1)]
        drawn = rng.choice(len(role_names), n_prac[j], p=role_p)
        roles += [all_roles.index(role_names[r]) for r in drawn]
    practitioner = first_prac[treatment] + rng.integers(0, n_prac[treatment])

    n_total_prac = int(n_prac.sum())
    return _Patients(
        treatment=treatment,
        age_band=age_band,
        gender=gender,
        first_day=first_day,
        planned=planned,
        practitioner=practitioner,
        general=rng.normal(0.0, rs.patient_sd, n),
        per_attribute=rng.normal(0.0, rs.patient_attribute_sd, (n, n_attr)),
        frailty=rng.normal(0.0, sim.effects.patient_frailty_sd, n),
        practitioner_ids=np.array(ids, dtype=object),
        role_names=all_roles,
        practitioner_role=np.array(roles, dtype=np.int64),
        practitioner_general=rng.normal(0.0, rs.practitioner_sd, n_total_prac),
        practitioner_attribute=rng.normal(
            0.0, rs.practitioner_attribute_sd, (n_total_prac, n_attr)
        ),
    )


class _Step(NamedTuple):
    """The encounters of one session number: one entry per patient seen at it."""

    patient: np.ndarray
    day: np.ndarray
    ratings: np.ndarray  # (n, K)
    next_session_due: np.ndarray  # bool: not the planned last session
    attended_next: np.ndarray  # int8, -1 = empty
    adherent: np.ndarray  # int8, -1 = empty
    p_attended_next: np.ndarray
    p_adherent: np.ndarray


def _run_sessions(
    patients: _Patients,
    model: _Model,
    cfg: Config,
    rng_ratings: np.random.Generator,
    rng_visits: np.random.Generator,
    n_steps: int,
    progress: Callable[[int, int], None] | None,
    shift: tuple[float, float] = (0.0, 1.0),
) -> list[_Step]:
    sim, rs = cfg.simulation, cfg.simulation.rating
    n, n_attr = patients.treatment.size, len(model.attribute_names)
    swing = np.zeros(n)
    previous = np.full((n, n_attr), np.nan)
    day = patients.first_day.copy()
    jitter = model.jitter_days[patients.treatment]
    in_treatment = np.arange(n)
    innovation_scale = math.sqrt(1.0 - rs.session_rho**2)
    steps: list[_Step] = []
    for t in range(1, n_steps + 1):
        # Draw for every patient, in or out of treatment, so that the ratings and
        # uniforms do not depend on earlier outcomes (common random numbers).
        z_swing = rng_ratings.standard_normal(n)
        z_noise = rng_ratings.standard_normal((n, n_attr))
        u_item = rng_ratings.random((n, n_attr))
        u_form = rng_ratings.random(n)
        gap_jitter = rng_visits.integers(-jitter, jitter + 1)
        u_attend = rng_visits.random(n)
        u_adhere = rng_visits.random(n)
        u_unrecorded = rng_visits.random(n)
        if t == 1:
            swing = rs.session_sd * z_swing
        else:
            swing = rs.session_rho * swing + innovation_scale * rs.session_sd * z_swing

        i = in_treatment
        if i.size:
            tr, prac = patients.treatment[i], patients.practitioner[i]
            latent = (
                rs.mean
                + patients.general[i, None]
                + patients.per_attribute[i]
                + patients.practitioner_general[prac, None]
                + patients.practitioner_attribute[prac]
                + swing[i, None]
                + rs.growth_per_log_session * math.log(t)
                + rs.noise_sd * z_noise[i]
            )
            ratings = np.clip(
                np.rint(model.lo + (latent - 1.0) * model.u),
                model.rating_min,
                model.rating_max,
            )
            ratings = np.where(
                model.direction > 0, ratings, model.rating_min + model.rating_max - ratings
            )
            empty = (u_item[i] < sim.missing_rating_rate) | (u_form[i] < sim.missing_form_rate)[
                :, None
            ]
            ratings[empty] = np.nan

            centred = np.where(empty, 0.0, ratings - model.ref)
            # a change counts as better or worse, whichever way the score runs
            change = (ratings - previous[i]) * model.direction
            mean_change = np.where(np.isnan(change), 0.0, change).sum(axis=1) / n_attr
            n_empty = empty.sum(axis=1)
            p = []
            for o in range(len(OUTCOME_NAMES)):
                logit = (
                    model.intercept[o, tr]
                    + np.einsum("ik,ik->i", centred, model.coef[o, tr])
                    + model.missing_rating[o] * n_empty
                    + model.rating_change[o] * mean_change
                    + model.log_session[o] * math.log(t)
                    + model.age_effect[o, patients.age_band[i]]
                    + patients.frailty[i]
                )
                p.append(expit(shift[0] + shift[1] * logit))
            p_attend, p_adhere = p

            last = patients.planned[i] == t
            next_day = day[i] + np.maximum(1, model.interval_days[tr] + gap_jitter[i])
            censored = ~last & (next_day > model.cutoff_days)
            due = ~last & ~censored
            attended = u_attend[i] < p_attend
            adherent = u_adhere[i] < p_adhere
            recorded = due & (u_unrecorded[i] >= sim.missing_adherence_rate)
            steps.append(
                _Step(
                    patient=i,
                    day=day[i],
                    ratings=ratings,
                    next_session_due=~last,
                    attended_next=np.where(due, attended, -1).astype(np.int8),
                    adherent=np.where(recorded, adherent, -1).astype(np.int8),
                    p_attended_next=p_attend,
                    p_adherent=p_adhere,
                )
            )
            previous[i] = ratings
            day[i] = next_day
            in_treatment = i[due & attended]
        if progress is not None:
            progress(t, n_steps + 1)
    return steps


def _assemble(patients: _Patients, steps: list[_Step], model: _Model) -> SimulatedData:
    patient = np.concatenate([s.patient for s in steps])
    session = np.concatenate(
        [np.full(s.patient.size, t, dtype=np.int64) for t, s in enumerate(steps, 1)]
    )
    # Rows arrive session by session; place each at its patient's block + session - 1
    # (a counting sort, cheaper than argsort on a million rows).
    n_rows = patient.size
    per_patient = np.bincount(patient, minlength=patients.treatment.size)
    block = np.cumsum(per_patient) - per_patient
    order = np.empty(n_rows, dtype=np.int64)
    order[block[patient] + session - 1] = np.arange(n_rows)

    patient = patient[order]
    session = session[order]
    day = np.concatenate([s.day for s in steps])[order]
    ratings = np.concatenate([s.ratings for s in steps])[order]
    prac = patients.practitioner[patient]

    n_patients = patients.treatment.size
    p_width = max(_PATIENT_ID_DIGITS, len(str(n_patients)))
    patient_ids = [f"P{k:0{p_width}d}" for k in range(1, n_patients + 1)]
    e_width = max(_ENCOUNTER_ID_DIGITS, len(str(n_rows)))
    encounter_id = pd.array([f"E{k:0{e_width}d}" for k in range(1, n_rows + 1)], dtype="str")
    encounters = {
        "patient_id": _strings(patient_ids, patient),
        "encounter_id": encounter_id,
        "session_number": session,
        "encounter_date": (model.start_date + day.astype("timedelta64[D]")).astype(
            "datetime64[ns]"
        ),
        "treatment": _strings(model.treatment_names, patients.treatment[patient]),
        "practitioner_id": _strings(patients.practitioner_ids, prac),
        "practitioner_role": _strings(patients.role_names, patients.practitioner_role[prac]),
    }
    for k, name in enumerate(model.attribute_names):
        encounters[name] = np.ascontiguousarray(ratings[:, k])
    encounters["age_band"] = _strings(model.age_bands, patients.age_band[patient])
    encounters["gender"] = _strings(model.genders, patients.gender[patient])
    due = np.concatenate([s.next_session_due for s in steps])[order]
    encounters["next_session_due"] = pd.arrays.IntegerArray(
        due.astype(np.int8), np.zeros(n_rows, dtype=bool)
    )
    for outcome in OUTCOME_NAMES:
        code = np.concatenate([getattr(s, outcome) for s in steps])[order]
        encounters[outcome] = pd.arrays.IntegerArray(np.maximum(code, 0), code < 0)
    truth = {"encounter_id": encounter_id}
    for outcome in OUTCOME_NAMES:
        truth[f"p_{outcome}"] = np.concatenate([getattr(s, f"p_{outcome}") for s in steps])[order]
    return SimulatedData(pd.DataFrame(encounters), pd.DataFrame(truth))


def _strings(levels: Sequence[str] | np.ndarray, codes: np.ndarray) -> pd.Series:
    # Taking from the few distinct strings is several times faster than converting a
    # column of a million Python strings.
    return pd.Series(pd.array(np.asarray(levels, dtype=object), dtype="str").take(codes))
