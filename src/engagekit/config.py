"""The configuration: rated qualities and their scale, treatments, outcomes, covariates.

A service with another instrument (other items, another scale) writes a YAML file with the
top-level blocks that differ; each block it gives replaces the default block whole. The
defaults ship in ``configs/default.yaml``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._resources import default_config_path
from .errors import ConfigError

__all__ = [
    "OUTCOME_NAMES",
    "Attribute",
    "Config",
    "Outcome",
    "RatingScale",
    "Treatment",
    "check_compatible",
    "config_from_dict",
    "load_config",
]

OUTCOME_NAMES = ("attended_next", "adherent")

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PerOutcome = dict[str, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_outcome_keys(mapping: dict[str, Any], where: str) -> None:
    unknown = sorted(set(mapping) - set(OUTCOME_NAMES))
    if unknown:
        raise ValueError(
            f"{where} names unknown outcome(s) {unknown}; expected keys among {list(OUTCOME_NAMES)}"
        )


class RatingScale(_Strict):
    """Bounds of the rating scale (inclusive)."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> RatingScale:
        if not self.max > self.min:
            raise ValueError(f"max ({self.max}) must be greater than min ({self.min})")
        return self

    @property
    def points_per_default_point(self) -> float:
        """How many points of this scale one point of the default 1-5 scale spans."""
        return (self.max - self.min) / 4.0


class Attribute(_Strict):
    """One rated practitioner quality.

    ``higher_is_better`` is true for ratings of a quality (5 of 5 is the best) and false
    for scores where a higher value is worse (a depression score on 0-63): reasons,
    suggestions and report wording follow the direction.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    label: str
    description: str
    suggestion: str
    higher_is_better: bool = True
    simulated: PerOutcome = Field(default_factory=lambda: {"attended_next": 0.15, "adherent": 0.15})

    @model_validator(mode="after")
    def _outcomes(self) -> Attribute:
        _check_outcome_keys(self.simulated, "simulated")
        return self


class Attributes(_Strict):
    scale: RatingScale
    items: Annotated[list[Attribute], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> Attributes:
        names = [a.name for a in self.items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"attribute names must be unique; repeated: {dupes}")
        return self


class TreatmentSimulation(_Strict):
    """How the simulator generates episodes of one treatment."""

    share: Annotated[float, Field(gt=0.0)] = 1.0
    planned_sessions: tuple[int, int] = (4, 8)
    interval_days: Annotated[int, Field(ge=1)] = 7
    roles: dict[str, Annotated[float, Field(gt=0.0)]] = Field(
        default_factory=lambda: {"practitioner": 1.0}
    )
    intercept: PerOutcome = Field(default_factory=lambda: {"attended_next": 3.0, "adherent": 0.6})

    @model_validator(mode="after")
    def _check(self) -> TreatmentSimulation:
        lo, hi = self.planned_sessions
        if not 1 <= lo <= hi:
            raise ValueError(
                f"planned_sessions must be [low, high] with 1 <= low <= high, found {[lo, hi]}"
            )
        _check_outcome_keys(self.intercept, "intercept")
        return self


class Treatment(_Strict):
    name: Annotated[str, Field(min_length=1)]
    label: str
    simulated: TreatmentSimulation = Field(default_factory=TreatmentSimulation)


class Outcome(_Strict):
    name: str
    label: str
    description: str
    bad_outcome: str

    @model_validator(mode="after")
    def _known(self) -> Outcome:
        if self.name not in OUTCOME_NAMES:
            raise ValueError(
                f"outcome {self.name!r} is not one engagekit models; expected one of "
                f"{list(OUTCOME_NAMES)}"
            )
        return self


class RatingSimulation(_Strict):
    reference: float = 4.0
    mean: float = 3.9
    patient_sd: Annotated[float, Field(ge=0)] = 0.45
    patient_attribute_sd: Annotated[float, Field(ge=0)] = 0.25
    practitioner_sd: Annotated[float, Field(ge=0)] = 0.30
    practitioner_attribute_sd: Annotated[float, Field(ge=0)] = 0.25
    session_sd: Annotated[float, Field(ge=0)] = 0.30
    session_rho: Annotated[float, Field(ge=0, lt=1)] = 0.6
    noise_sd: Annotated[float, Field(ge=0)] = 0.35
    growth_per_log_session: float = 0.10


class SimulationEffects(_Strict):
    rating_change: PerOutcome = Field(
        default_factory=lambda: {"attended_next": 0.4, "adherent": 0.3}
    )
    log_session: PerOutcome = Field(
        default_factory=lambda: {"attended_next": 0.3, "adherent": -0.05}
    )
    missing_rating: PerOutcome = Field(
        default_factory=lambda: {"attended_next": -0.15, "adherent": -0.10}
    )
    patient_frailty_sd: Annotated[float, Field(ge=0)] = 0.0

    @model_validator(mode="after")
    def _outcomes(self) -> SimulationEffects:
        for key in ("rating_change", "log_session", "missing_rating"):
            _check_outcome_keys(getattr(self, key), key)
        return self


class CategoricalSimulation(_Strict):
    shares: dict[str, Annotated[float, Field(gt=0)]]
    effect: dict[str, dict[str, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> CategoricalSimulation:
        _check_outcome_keys(self.effect, "effect")
        for outcome, by_level in self.effect.items():
            unknown = sorted(set(by_level) - set(self.shares))
            if unknown:
                raise ValueError(f"effect.{outcome} names categories {unknown} that have no share")
        return self


class SimulationSettings(_Strict):
    """Ground truth and realism settings of the built-in simulator."""

    start_date: str = "2025-01-06"
    enrolment_days: Annotated[int, Field(ge=1)] = 365
    cutoff_days: Annotated[int, Field(ge=1)] = 400
    patients_per_practitioner: Annotated[int, Field(ge=1)] = 30
    rating: RatingSimulation = Field(default_factory=RatingSimulation)
    missing_rating_rate: Probability = 0.04
    missing_form_rate: Probability = 0.03
    missing_adherence_rate: Probability = 0.05
    effects: SimulationEffects = Field(default_factory=SimulationEffects)
    age_band: CategoricalSimulation = Field(
        default_factory=lambda: CategoricalSimulation(
            shares={"18-29": 1, "30-39": 1, "40-49": 1, "50-59": 1, "60+": 1}
        )
    )
    gender: CategoricalSimulation = Field(
        default_factory=lambda: CategoricalSimulation(
            shares={"female": 0.64, "male": 0.34, "non_binary": 0.02}
        )
    )


class HeterogeneitySettings(_Strict):
    """How the cross-treatment analysis (``engagekit heterogeneity``) tests and decides."""

    margin: Annotated[float, Field(gt=0)] = 0.22314355131420976  # log(1.25)
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    adjustment: Literal["holm", "fdr_bh"] = "holm"
    test: Literal["wald", "score"] = "wald"
    cluster: Literal["patient", "practitioner"] = "patient"
    working_correlation: Literal["independence", "exchangeable"] = "independence"
    cov_type: Literal["kauermann_carroll", "bias_reduced"] = "kauermann_carroll"


class Config(_Strict):
    """A validated engagekit configuration.

    Build one with :func:`load_config`; the attributes below are what the rest of the
    toolkit reads.
    """

    config_version: int = 1
    attributes: Attributes
    treatments: Annotated[list[Treatment], Field(min_length=1)]
    outcomes: list[Outcome]
    covariates: list[str] = Field(default_factory=list)
    subgroups: list[str] = Field(default_factory=list)
    simulation: SimulationSettings = Field(default_factory=SimulationSettings)
    heterogeneity: HeterogeneitySettings = Field(default_factory=HeterogeneitySettings)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.config_version != 1:
            raise ValueError(
                f"config_version {self.config_version} is not supported; this engagekit "
                "reads config_version 1"
            )
        names = [t.name for t in self.treatments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"treatment names must be unique; repeated: {dupes}")
        reserved = set(self.attribute_names) & {"treatment", "patient_id"}
        if reserved:
            raise ValueError(f"attribute names {sorted(reserved)} are reserved columns")
        return self

    @property
    def attribute_names(self) -> list[str]:
        return [a.name for a in self.attributes.items]

    @property
    def treatment_names(self) -> list[str]:
        return [t.name for t in self.treatments]

    @property
    def outcome_names(self) -> list[str]:
        return [o.name for o in self.outcomes]

    def attribute(self, name: str) -> Attribute:
        for item in self.attributes.items:
            if item.name == name:
                return item
        raise KeyError(name)


def check_compatible(given: Config, trained: Config, given_name: str, trained_name: str) -> None:
    """Refuse a config that would read a model's data differently from its own.

    A trained model's features are fixed: the rated attributes, their scale, the
    treatments and the covariates. Another config may change only the words (labels,
    descriptions, suggestions) and settings that do not enter the model.

    Raises
    ------
    ConfigError
        ``given`` differs from ``trained`` in any of those; the message says where.

    Examples
    --------
    >>> cfg = load_config()
    >>> check_compatible(cfg, cfg, "a", "b")
    >>> other = config_from_dict({"covariates": []})
    >>> check_compatible(other, cfg, "the config 'x.yaml'", "the model 'm'")
    Traceback (most recent call last):
    ...
    engagekit.errors.ConfigError: the config 'x.yaml' does not match the model 'm': covariates ...
    """
    checks = (
        ("attributes", given.attribute_names, trained.attribute_names),
        (
            "the rating scale",
            (given.attributes.scale.min, given.attributes.scale.max),
            (trained.attributes.scale.min, trained.attributes.scale.max),
        ),
        (
            "the rating directions (higher_is_better)",
            [a.higher_is_better for a in given.attributes.items],
            [a.higher_is_better for a in trained.attributes.items],
        ),
        ("treatments", given.treatment_names, trained.treatment_names),
        ("covariates", list(given.covariates), list(trained.covariates)),
    )
    for what, theirs, ours in checks:
        if theirs != ours:
            raise ConfigError(
                f"{given_name} does not match {trained_name}: {what} are {theirs} there but "
                f"{ours} here; a model keeps the attributes, scale, treatments and "
                "covariates it was trained with"
            )


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"the config {source} is not valid:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against configs/default.yaml)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        found = e.get("input")
        shown = (
            "" if e["type"] in ("missing",) or isinstance(found, dict) else (f" (found {found!r})")
        )
        lines.append(f"  - {loc}: {msg}{shown}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"config file {str(path)!r} does not exist") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {str(path)!r} must be a YAML mapping of blocks "
            f"(attributes:, treatments:, ...), found a {type(data).__name__}"
        )
    return data


def config_from_dict(data: dict[str, Any], source: str = "(in memory)") -> Config:
    """Validate a config given as a mapping laid over the defaults.

    Each top-level key of ``data`` replaces the default block of that name whole.
    """
    merged = _read_yaml(default_config_path())
    merged.update(data)
    nan_at = _nan_path(merged)
    if nan_at is not None:
        raise ConfigError(
            f"the config {source} is not valid:\n  - {nan_at}: give a number, found NaN"
        )
    try:
        return Config.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, source)) from e


def _nan_path(obj: Any, path: str = "") -> str | None:
    """Dotted key path of the first NaN in a parsed YAML document, or None."""
    if isinstance(obj, float) and math.isnan(obj):
        return path or "(top level)"
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        found = _nan_path(value, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a configuration.

    Parameters
    ----------
    path : str or Path, optional
        A YAML file. Each top-level block it gives replaces the default block of that
        name; blocks it leaves out keep their defaults. ``None`` gives the defaults.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        The file is missing, not YAML, or a key is unknown or has a wrong value. The
        message names the key, what was expected and what was found.

    Examples
    --------
    >>> from engagekit import load_config
    >>> cfg = load_config()
    >>> cfg.attribute_names[:2]
    ['approachability', 'empathy']
    >>> from engagekit.config import config_from_dict
    >>> config_from_dict({"attributes": {"scale": {"min": 5, "max": 1}, "items": []}})
    Traceback (most recent call last):
    ...
    engagekit.errors.ConfigError: the config (in memory) is not valid:
      - attributes.scale: max (1.0) must be greater than min (5.0)
      - attributes.items: List should have at least 1 item after validation, not 0 (found [])
    """
    if path is None:
        return config_from_dict({}, source="(defaults)")
    path = Path(path)
    return config_from_dict(_read_yaml(path), source=repr(str(path)))
