"""Scores as FHIR R4 resources: a ``RiskAssessment`` per patient, a ``Flag`` when high.

``engagekit score ... --fhir OUT.ndjson`` exports each patient's latest encounter scored
(the highest ``session_number``, then the latest ``encounter_date``) as

- a ``RiskAssessment``: status ``final``; the patient as ``subject`` and the encounter
  as ``basis``, both logical references (an identifier under the config's
  ``fhir.patient_system`` and ``fhir.encounter_system`` URIs); ``occurrenceDateTime``
  the encounter's date; one ``prediction`` of the bad outcome (the config's
  ``bad_outcome`` words) with ``probabilityDecimal`` the ``risk`` and
  ``qualitativeRisk`` the flag in the HL7 risk-probability code system (``high``,
  ``moderate`` for a medium flag, ``low``); the model as ``method`` (its kind, target
  and ``model_sha256``); and the reasons with what to try as ``mitigation``;
- a ``Flag`` (status ``active``, category ``clinical``) for a patient flagged high.

The resources are plain JSON-ready dicts, written one per line (NDJSON, as FHIR's bulk
data format) by :func:`write_fhir`, whole or not at all. Each resource's ``id`` is a
SHA-256 of the encounter and the model, so exporting the same scores again gives the
same ids (an update, not a duplicate, on a server that stores them by id).

The identifiers are the export's content: they go into the file and never into a
message, a log or an exception.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._excerpt import excerpt
from ..config import Config
from ..errors import ConfigError, ContractError, OutputError
from ._write import atomic_path

if TYPE_CHECKING:
    from ..models import ModelManifest

__all__ = [
    "FHIR_COLUMNS",
    "FhirExport",
    "fhir_resources",
    "latest_encounters",
    "read_score_run",
    "write_fhir",
]

#: The score columns the export reads: the first four are required, the ordering
#: columns (``session_number``, ``encounter_date``) one at least.
FHIR_COLUMNS = (
    "encounter_id",
    "patient_id",
    "risk",
    "flag",
    "reasons",
    "session_number",
    "encounter_date",
)
_REQUIRED = ("encounter_id", "patient_id", "risk", "flag")
_ORDER = ("session_number", "encounter_date")

RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
#: engagekit's flag levels as codes of the risk-probability code system, with its
#: displays
_QUALITATIVE_RISK = {
    "high": ("high", "High likelihood"),
    "medium": ("moderate", "Moderate likelihood"),
    "low": ("low", "Low likelihood"),
}


@dataclass(frozen=True)
class FhirExport:
    """What :func:`write_fhir` wrote.

    Attributes
    ----------
    path : Path
        The NDJSON file.
    n_risk_assessments, n_flags : int
        Resources written of each type: one RiskAssessment per patient, a Flag per
        patient flagged high.
    """

    path: Path
    n_risk_assessments: int
    n_flags: int


def _check_columns(scores: pd.DataFrame) -> None:
    missing = [c for c in _REQUIRED if c not in scores.columns]
    if not any(c in scores.columns for c in _ORDER):
        missing.append(" or ".join(repr(c) for c in _ORDER))
    if missing:
        names = ", ".join(c if c.startswith("'") else repr(c) for c in missing)
        raise ContractError(
            f"the scores lack {names}: a FHIR export needs the encounter_id, patient_id, "
            "risk and flag of each encounter scored, and its session_number or "
            "encounter_date to find each patient's latest; export scores written by "
            "engagekit score from a table with those columns"
        )


def latest_encounters(frames: pd.DataFrame | Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Each patient's latest encounter among score rows given whole or in chunks.

    The latest is the highest ``session_number``, then the latest ``encounter_date``
    (ISO text), then the highest ``encounter_id``; only the :data:`FHIR_COLUMNS` the
    scores have are kept. Chunks are reduced one at a time, so the memory held is one
    chunk and one row per patient.

    Parameters
    ----------
    frames : pandas.DataFrame or iterable of DataFrame
        Score rows (:func:`engagekit.scoring.score_encounters`), a patient's rows in
        any chunks and any order.

    Returns
    -------
    pandas.DataFrame
        One row per patient, ordered by ``patient_id``.

    Raises
    ------
    ContractError
        A chunk lacks a column the export needs; the message names it.

    Examples
    --------
    >>> scores = pd.DataFrame({
    ...     "encounter_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p1", "p2"],
    ...     "session_number": [1, 2, 1], "risk": [0.1, 0.4, 0.2],
    ...     "flag": ["low", "high", "low"]})
    >>> latest_encounters([scores.iloc[:1], scores.iloc[1:]])["encounter_id"].tolist()
    ['e2', 'e3']
    >>> latest_encounters(scores.drop(columns="session_number"))
    Traceback (most recent call last):
    ...
    engagekit.errors.ContractError: the scores lack 'session_number' or 'encounter_date': ...
    """
    if isinstance(frames, pd.DataFrame):
        frames = [frames]
    latest: pd.DataFrame | None = None
    for frame in frames:
        _check_columns(frame)
        frame = frame[[c for c in FHIR_COLUMNS if c in frame.columns]]
        both = frame if latest is None else pd.concat([latest, frame], ignore_index=True)
        order = [c for c in _ORDER if c in both.columns] + ["encounter_id"]
        # mergesort is stable: ties in every key keep the rows' order
        latest = both.sort_values(order, kind="mergesort", na_position="first").drop_duplicates(
            "patient_id", keep="last"
        )
    if latest is None:
        return pd.DataFrame(columns=list(FHIR_COLUMNS))
    return latest.sort_values("patient_id", kind="mergesort").reset_index(drop=True)


def _resource_id(*parts: str) -> str:
    """A FHIR id (64 characters of ``[0-9a-f]``) that is the same for the same parts."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and not value.strip())


def _outcome(config: Config, target: str) -> tuple[str, str]:
    """``(label, bad_outcome)`` of the model's target in ``config``."""
    for outcome in config.outcomes:
        if outcome.name == target:
            return outcome.label, outcome.bad_outcome
    raise ConfigError(
        f"the config has no outcome {target!r}, the model's target: a FHIR export words "
        f"the prediction by its bad_outcome; add {target!r} to the config's outcomes"
    )


def fhir_resources(
    scores: pd.DataFrame,
    manifest: ModelManifest,
    config: Config,
    *,
    patient_system: str | None = None,
    encounter_system: str | None = None,
) -> Iterator[dict[str, Any]]:
    """FHIR R4 resources for each patient's latest encounter among ``scores``.

    Per patient, a ``RiskAssessment`` and, when its latest encounter is flagged
    ``high``, a ``Flag`` (see the module's notes for their elements).

    Parameters
    ----------
    scores : pandas.DataFrame
        Score rows, all of a patient's or only the latest (:func:`latest_encounters`
        picks it either way).
    manifest : ModelManifest
        The model that scored them: its ``kind``, ``target`` and ``model_sha256``
        name the method.
    config : Config
        The outcome's words (``bad_outcome``, ``label``) and, unless given, the
        identifier systems (``config.fhir``).
    patient_system, encounter_system : str, optional
        The identifier system URIs of ``patient_id`` and ``encounter_id``; default
        ``config.fhir.patient_system`` and ``config.fhir.encounter_system``.

    Yields
    ------
    dict
        A resource as FHIR JSON, ``resourceType`` first.

    Raises
    ------
    ContractError
        ``scores`` lacks a column the export needs.
    ConfigError
        ``config`` has no outcome of the model's target.

    Examples
    --------
    >>> from engagekit.config import load_config
    >>> from engagekit.models import ModelManifest
    >>> manifest = ModelManifest.model_construct(
    ...     target="attended_next", kind="gbm", model_sha256="0" * 64)
    >>> scores = pd.DataFrame({
    ...     "encounter_id": ["e7"], "patient_id": ["p1"], "session_number": [3],
    ...     "encounter_date": ["2025-03-04"], "risk": [0.25], "flag": ["high"],
    ...     "reasons": ["Empathy was low (2/5); try: attend to the patient's feelings"]})
    >>> assessment, flag = fhir_resources(scores, manifest, load_config())
    >>> assessment["subject"]
    {'type': 'Patient', 'identifier': {'system': 'urn:engagekit:patient', 'value': 'p1'}}
    >>> prediction = assessment["prediction"][0]
    >>> prediction["outcome"]["text"], prediction["probabilityDecimal"]
    ('did not attend the next session', 0.25)
    >>> prediction["qualitativeRisk"]["coding"][0]["code"], flag["code"]["text"]
    ('high', 'At risk of poor re-attendance')
    >>> next(fhir_resources(scores.drop(columns="patient_id"), manifest, load_config()))
    Traceback (most recent call last):
    ...
    engagekit.errors.ContractError: the scores lack 'patient_id': a FHIR export needs ...
    """
    latest = latest_encounters(scores)
    label, bad_outcome = _outcome(config, manifest.target)
    patient_system = patient_system or config.fhir.patient_system
    encounter_system = encounter_system or config.fhir.encounter_system
    model_sha256 = manifest.model_sha256 or ""
    model = f"engagekit {manifest.kind} model of {manifest.target}"
    method: dict[str, Any] = {"text": model}
    if model_sha256:
        coding = {"system": "urn:engagekit:model_sha256", "code": model_sha256, "display": model}
        method = {"coding": [coding], "text": f"{model}, model_sha256 {model_sha256}"}
    flag_code = {"text": f"At risk of poor {label.lower()}"}
    for row in latest.itertuples(index=False):
        encounter_id, patient_id = str(row.encounter_id), str(row.patient_id)
        patient = {"type": "Patient", "identifier": {"system": patient_system, "value": patient_id}}
        encounter = {
            "type": "Encounter",
            "identifier": {"system": encounter_system, "value": encounter_id},
        }
        date = getattr(row, "encounter_date", None)
        date = str(date)[:10] if _present(date) else None
        level = str(row.flag)
        code, display = _QUALITATIVE_RISK[level]
        assessment: dict[str, Any] = {
            "resourceType": "RiskAssessment",
            "id": _resource_id("RiskAssessment", encounter_system, encounter_id, model_sha256),
            "status": "final",
            "method": method,
            "subject": patient,
        }
        if date is not None:
            assessment["occurrenceDateTime"] = date
        assessment["basis"] = [encounter]
        assessment["prediction"] = [
            {
                "outcome": {"text": bad_outcome},
                "probabilityDecimal": float(row.risk),
                "qualitativeRisk": {
                    "coding": [{"system": RISK_PROBABILITY, "code": code, "display": display}],
                    "text": level,
                },
            }
        ]
        reasons = getattr(row, "reasons", None)
        if _present(reasons):
            assessment["mitigation"] = str(reasons)
        yield assessment
        if level != "high":
            continue
        flag: dict[str, Any] = {
            "resourceType": "Flag",
            "id": _resource_id("Flag", encounter_system, encounter_id, model_sha256),
            "status": "active",
            "category": [
                {
                    "coding": [
                        {"system": FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}
                    ],
                    "text": "Clinical",
                }
            ],
            "code": flag_code,
            "subject": patient,
        }
        if date is not None:
            flag["period"] = {"start": date}
        flag["encounter"] = encounter
        yield flag


def write_fhir(path: str | Path, resources: Iterable[dict[str, Any]]) -> FhirExport:
    """Write FHIR resources as NDJSON (one per line, UTF-8), whole or not at all.

    Parameters
    ----------
    path : str or Path
        The file; written under a temporary name and renamed when complete
        (:func:`engagekit.io._write.atomic_path`).
    resources : iterable of dict
        FHIR JSON resources, as :func:`fhir_resources` yields them.

    Returns
    -------
    FhirExport

    Raises
    ------
    OutputError
        The file cannot be written; nothing is left at ``path`` that was not there.
    ValueError
        A resource holds a number JSON cannot (NaN, infinity).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "risk.ndjson"
    >>> write_fhir(path, [{"resourceType": "Flag", "status": "active"}]).n_flags
    1
    >>> path.read_text()
    '{"resourceType":"Flag","status":"active"}\\n'
    """
    path = Path(path)
    counts = {"RiskAssessment": 0, "Flag": 0}
    with atomic_path(path) as partial:
        try:
            with partial.open("w", encoding="utf-8", newline="\n") as fh:
                for resource in resources:
                    fh.write(
                        json.dumps(
                            resource, ensure_ascii=False, allow_nan=False, separators=(",", ":")
                        )
                    )
                    fh.write("\n")
                    kind = resource.get("resourceType")
                    if kind in counts:
                        counts[kind] += 1
        except OSError as e:
            raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    return FhirExport(path, counts["RiskAssessment"], counts["Flag"])


def read_score_run(
    database: str, table: str, run_id: int, *, chunk_rows: int = 50_000
) -> Iterator[pd.DataFrame]:
    """The :data:`FHIR_COLUMNS` of one run's rows in a scores table, in chunks.

    The database holds the raw values (a CSV scores file has its formula-like cells
    escaped), typed, keyed by run.

    Parameters
    ----------
    database : str
        SQLAlchemy URL of the database :func:`~engagekit.io.write_scores` wrote.
    table : str
        Its scores table.
    run_id : int
        The run (:attr:`~engagekit.io.ScoreRun.run_id`).
    chunk_rows : int, default 50000
        Rows per chunk.

    Yields
    ------
    pandas.DataFrame

    Raises
    ------
    OutputError
        The table cannot be read; the message names it.
    """
    import sqlalchemy as sa

    from ._scores import RUN_COLUMN, _without_password

    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            try:
                scores = sa.Table(table, sa.MetaData(), autoload_with=conn)
                columns = [c for c in FHIR_COLUMNS if c in scores.c]
                query = sa.select(*(scores.c[c] for c in columns)).where(
                    scores.c[RUN_COLUMN] == run_id
                )
                result = conn.execution_options(yield_per=chunk_rows).execute(query)
                for rows in result.partitions():
                    yield pd.DataFrame([tuple(r) for r in rows], columns=columns)
            except sa.exc.SQLAlchemyError as e:
                raise OutputError(
                    f"cannot read run {run_id} of table {table!r} of "
                    f"{_without_password(database)!r} for the FHIR export: "
                    f"{excerpt(str(getattr(e, 'orig', None) or e), 200)}"
                ) from e
    finally:
        engine.dispose()
