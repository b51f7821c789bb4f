"""The configuration: rated qualities and their scale, treatments, outcomes, covariates.

A service with another instrument (other items, another scale) writes a YAML file with the
top-level blocks that differ; each block it gives replaces the default block whole. The
defaults ship in ``configs/default.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ._excerpt import excerpt, excerpt_lines
from ._files import open_regular_file
from ._pydantic_errors import config_problems
from ._resources import contract_schema, default_config_path
from .choices import (
    Adjustment,
    Cluster,
    CovarianceType,
    JointTestKind,
    MarginScale,
    MissingRatings,
    WorkingCorrelation,
)
from .errors import ConfigError, NotARegularFileError

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

#: The contract columns that describe a patient or a practitioner: the only contract
#: columns a covariate or subgroup may name. Every other one identifies or orders an
#: encounter, is its treatment (in every model and subgroup table already) or records
#: what happened after it. A column added to the contract later is refused as a
#: covariate until it is listed here.
DESCRIPTIVE_COLUMNS = ("practitioner_role", "age_band", "gender")


def _contract_columns() -> dict[str, str | None]:
    """The data contract's columns other than the rating fields, each with its role."""
    return {
        spec["name"]: spec.get("engagekit:role")
        for spec in contract_schema()["fields"]
        if spec.get("engagekit:role") != "attribute"
    }


def _why_reserved(name: str) -> str:
    """Why the contract column ``name`` cannot be a rated attribute or a predictor."""
    role = _contract_columns().get(name)
    if role == "outcome":
        return f"{name!r} is an outcome: a model given it would see the answer it predicts"
    if role == "treatment":
        return f"{name!r} is the treatment, which every model and subgroup table uses already"
    if name == "next_session_due":
        return f"{name!r} says whether a further session was due, known only afterwards"
    if name in ("session_number", "encounter_date"):
        return f"{name!r} orders a patient's sessions, which the features use already"
    if name.endswith("_id"):
        return f"{name!r} is an identifier"
    return f"{name!r} is a column of the data contract with its own meaning"


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PerOutcome = dict[str, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_outcome_keys(mapping: dict[str, Any], where: str) -> None:
    unknown = sorted(set(mapping) - set(OUTCOME_NAMES))
    if unknown:
        raise ValueError(
            f"{where} names unknown outcome(s) {excerpt(unknown)}; expected keys among "
            f"{list(OUTCOME_NAMES)}"
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
            raise ValueError(f"attribute names must be unique; repeated: {excerpt(dupes)}")
        # a rating named like a contract column would read that column: an attribute
        # named attended_next fed the outcome to the model (AUROC 1.000)
        clashes = [n for n in names if n in _contract_columns()]
        if clashes:
            raise ValueError(
                "an attribute may not take the name of a column of the data contract: "
                + "; ".join(_why_reserved(n) for n in clashes)
                + ". Give each rated quality a name of its own"
            )
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
                f"planned_sessions must be [low, high] with 1 <= low <= high, found "
                f"{excerpt([lo, hi])}"
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
                f"outcome {excerpt(self.name)} is not one engagekit models; expected one of "
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
                raise ValueError(
                    f"effect.{excerpt(outcome)} names categories {excerpt(unknown)} that "
                    "have no share"
                )
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


#: The default equivalence margin: an odds ratio within ×/÷1.25 (log 1.25).
DEFAULT_MARGIN = 0.22314355131420976


class Margin(_Strict):
    """The equivalence margin: two treatments' effects of a quality within ``value``
    log-odds of each other count as the same, per standard deviation of the rating
    (``per: sd``, the default: the same on every instrument) or per rating point.

    A bare number (``margin: 0.223``, as configs said before) is per rating point.
    """

    value: Annotated[float, Field(gt=0)] = DEFAULT_MARGIN
    per: MarginScale = MarginScale.SD

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"value": data, "per": MarginScale.POINT}
        return data


class HeterogeneitySettings(_Strict):
    """How the cross-treatment analysis (``engagekit heterogeneity``) tests and decides."""

    margin: Margin = Field(default_factory=Margin)
    missing: MissingRatings | None = None  # None: MI when over 5% would be left out
    imputations: Annotated[int, Field(ge=2, le=1000)] = 20
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    adjustment: Adjustment = Adjustment.HOLM
    test: JointTestKind = JointTestKind.WALD
    cluster: Cluster = Cluster.PATIENT
    working_correlation: WorkingCorrelation = WorkingCorrelation.INDEPENDENCE
    cov_type: CovarianceType = CovarianceType.KAUERMANN_CARROLL


#: An absolute URI, as FHIR requires of an identifier's system: a scheme, then no spaces.
_ABSOLUTE_URI = r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$"


class FhirSettings(_Strict):
    """How ``engagekit score --fhir`` identifies patients and encounters in FHIR.

    Each patient and encounter is referred to by a logical reference: an identifier
    whose ``system`` is the URI below and whose ``value`` is the ``patient_id`` or
    ``encounter_id``. A service gives the URIs its electronic record uses for those
    identifiers, so that a FHIR server matches them to its own Patient and Encounter.
    """

    patient_system: Annotated[str, Field(pattern=_ABSOLUTE_URI)] = "urn:engagekit:patient"
    encounter_system: Annotated[str, Field(pattern=_ABSOLUTE_URI)] = "urn:engagekit:encounter"


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
    fhir: FhirSettings = Field(default_factory=FhirSettings)

    @field_validator("covariates", "subgroups")
    @classmethod
    def _descriptive_columns(cls, names: list[str], info: ValidationInfo) -> list[str]:
        attributes = info.data.get("attributes")
        rated = {a.name for a in attributes.items} if attributes is not None else set()
        contract = _contract_columns()
        reasons = [
            _why_reserved(n) for n in names if n in contract and n not in DESCRIPTIVE_COLUMNS
        ] + [f"{excerpt(n)} is a rated attribute, a predictor already" for n in names if n in rated]
        if reasons:
            kind = info.field_name.removesuffix("s") if info.field_name else "covariate"
            raise ValueError(
                f"a {kind} must be a column that describes the patient or practitioner "
                f"({', '.join(DESCRIPTIVE_COLUMNS)}, or a column of the service's own): "
                + "; ".join(reasons)
            )
        return names

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.config_version != 1:
            raise ValueError(
                f"config_version {excerpt(self.config_version)} is not supported; this engagekit "
                "reads config_version 1"
            )
        names = [t.name for t in self.treatments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"treatment names must be unique; repeated: {excerpt(dupes)}")
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
                f"{given_name} does not match {trained_name}: {what} are "
                f"{excerpt(theirs, 200)} there but {excerpt(ours, 200)} here; a model keeps "
                "the attributes, scale, treatments and covariates it was trained with"
            )


#: A config file is a few kilobytes; these bound what a hostile one can cost.
MAX_CONFIG_BYTES = 1_000_000
#: values (scalars, lists and mappings) of a config with every alias expanded
MAX_CONFIG_VALUES = 100_000
#: levels of nesting
MAX_CONFIG_DEPTH = 50


def _read_config_text(path: Path) -> str:
    """The text of a config file: a regular file of at most ``MAX_CONFIG_BYTES``."""
    name = excerpt(str(path), 200)
    try:
        with open_regular_file(path) as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as e:
        raise ConfigError(f"config file {name} does not exist") from e
    except NotARegularFileError as e:
        raise ConfigError(
            f"config file {name} cannot be read: it is {e.kind}, not a YAML file"
        ) from e
    except OSError as e:
        raise ConfigError(f"config file {name} cannot be read: {e.strerror or e}") from e
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {name} is larger than {MAX_CONFIG_BYTES:,} bytes; a config is a "
            "few kilobytes of YAML (see configs/default.yaml)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"config file {name} is not UTF-8 text (byte 0x{data[e.start]:02x} at position "
            f"{e.start}); save it as UTF-8"
        ) from e


def _check_bounds(root: yaml.Node, name: str) -> None:
    """Refuse a composed YAML document too large or too deep once aliases are expanded.

    An alias is the same node object as its anchor, so the expanded size of a node is
    counted once and reused (memoised on the node's identity): a "billion laughs"
    document of nine nested anchors is measured in a few hundred steps, before any of
    it is built into Python objects.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def refuse(why: str) -> ConfigError:
        return ConfigError(f"config file {name} is refused: {why}")

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise refuse("an alias refers to a node that contains it (a recursive alias)")
        if depth > MAX_CONFIG_DEPTH:
            raise refuse(f"it is nested more than {MAX_CONFIG_DEPTH} levels deep")
        total = 1
        if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
            open_nodes.add(key)
            children = (
                node.value
                if isinstance(node, yaml.SequenceNode)
                else [part for pair in node.value for part in pair]
            )
            for child in children:
                total += size(child, depth + 1)
                if total > MAX_CONFIG_VALUES:
                    raise refuse(
                        f"it holds more than {MAX_CONFIG_VALUES:,} values once its aliases "
                        "(*name) are expanded"
                    )
            open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root, 0)


def _safe_loader(text: str) -> yaml.SafeLoader:
    """A safe YAML loader for ``text``: libyaml's where it limits nesting (0.2.5 on),
    which parses a megabyte in a fraction of a second, else PyYAML's own."""
    try:
        from yaml import CSafeLoader
        from yaml._yaml import get_version
    except ImportError:
        return yaml.SafeLoader(text)
    return CSafeLoader(text) if get_version() >= (0, 2, 5) else yaml.SafeLoader(text)


def _parse_yaml(text: str, name: str) -> Any:
    """Parse YAML text safely and within bounds (see :func:`_check_bounds`)."""
    loader = None
    try:
        loader = _safe_loader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_bounds(node, name)
        return loader.construct_document(node)
    except ConfigError:
        raise  # a ValueError too, but not the parser's: keep its own message
    except RecursionError:
        raise ConfigError(
            f"config file {name} is refused: it is nested more than {MAX_CONFIG_DEPTH} levels deep"
        ) from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as e:
        # the parser's messages quote the offending line; keep them short
        raise ConfigError(f"config file {name} is not valid YAML: {excerpt_lines(str(e))}") from e
    finally:
        if loader is not None:
            loader.dispose()


def _read_yaml(path: Path) -> dict[str, Any]:
    name = excerpt(str(path), 200)
    data = _parse_yaml(_read_config_text(path), name)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {name} must be a YAML mapping of blocks "
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
        problems = "\n".join(config_problems(e))
        raise ConfigError(f"the config {source} is not valid:\n{problems}") from e


def _nan_path(obj: Any, path: str = "") -> str | None:
    """Dotted key path of the first NaN in a parsed YAML document, or None."""
    if isinstance(obj, float) and math.isnan(obj):
        return path or "(top level)"
    items: Iterable[tuple[Any, Any]]
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
    return config_from_dict(_read_yaml(path), source=excerpt(str(path), 200))
