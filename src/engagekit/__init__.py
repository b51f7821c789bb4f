"""engagekit: predict re-attendance and adherence in depression treatment.

Patients' session-by-session ratings of six practitioner qualities (approachability,
empathy, support, active listening, helping with decisions, encouraging self-kindness)
plus the treatment they receive become features for models of whether they come back to
their next session (``attended_next``) and keep to their treatment (``adherent``).

The data flows one way: load (:mod:`engagekit.io`) → validate
(:mod:`engagekit.validation`) → summarise → model → explain → flag.
"""

from importlib.metadata import PackageNotFoundError, version

from .config import Config, load_config
from .errors import (
    ConfigError,
    ContractError,
    DataReadError,
    EngagekitError,
    OutputError,
)
from .features import EncounterFeatures
from .io import read_encounters, write_table
from .simulation import (
    Heterogeneity,
    SimulatedData,
    parse_heterogeneity,
    simulate_encounters,
)
from .summary import EncounterSummary, summarize_encounters
from .validation import (
    ValidationReport,
    check_encounters,
    coerce_encounters,
    encounter_contract,
    split_by_validity,
    validate_encounters,
)

try:
    __version__ = version("engagekit")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "Config",
    "ConfigError",
    "ContractError",
    "DataReadError",
    "EncounterFeatures",
    "EncounterSummary",
    "EngagekitError",
    "Heterogeneity",
    "OutputError",
    "SimulatedData",
    "ValidationReport",
    "__version__",
    "check_encounters",
    "coerce_encounters",
    "encounter_contract",
    "load_config",
    "parse_heterogeneity",
    "read_encounters",
    "simulate_encounters",
    "split_by_validity",
    "summarize_encounters",
    "validate_encounters",
    "write_table",
]
