"""The encounter contract: ``data_schema/encounters.schema.json`` made concrete by a config.

The Table Schema holds every rule once. Fields marked ``engagekit:role: attribute`` stand
for the rated qualities: the config's attribute items replace them, with the config's
scale. The field marked ``engagekit:role: treatment`` takes the config's treatment list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._resources import contract_schema
from ..config import Config

__all__ = ["ContractField", "EncounterContract", "encounter_contract"]


@dataclass(frozen=True)
class ContractField:
    """One column of the encounter table and its rules."""

    name: str
    type: str  # "string" | "integer" | "number" | "date"
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[Any, ...] | None = None
    unique: bool = False
    pattern: str | None = None
    role: str | None = None
    description: str = ""
    non_decreasing_within: str | None = None
    non_decreasing_by: str | None = None


@dataclass(frozen=True)
class EncounterContract:
    """All rules an encounter table must meet, for one config."""

    fields: tuple[ContractField, ...]
    unique_keys: tuple[tuple[str, ...], ...] = ()
    missing_values: tuple[str, ...] = ("",)
    version: str = "1"
    _by_name: dict[str, ContractField] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({f.name: f for f in self.fields})

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required_columns(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def __getitem__(self, name: str) -> ContractField:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def by_role(self, role: str) -> list[ContractField]:
        return [f for f in self.fields if f.role == role]


def _field_from_schema(spec: dict[str, Any]) -> ContractField:
    c = spec.get("constraints", {})
    nd = spec.get("engagekit:nonDecreasing") or {}
    return ContractField(
        name=spec["name"],
        type=spec.get("type", "string"),
        required=bool(c.get("required", False)),
        minimum=c.get("minimum"),
        maximum=c.get("maximum"),
        enum=tuple(c["enum"]) if "enum" in c else None,
        unique=bool(c.get("unique", False)),
        pattern=c.get("pattern"),
        role=spec.get("engagekit:role"),
        description=spec.get("description", ""),
        non_decreasing_within=nd.get("within"),
        non_decreasing_by=nd.get("orderedBy"),
    )


def encounter_contract(config: Config) -> EncounterContract:
    """The encounter contract for ``config``.

    Parameters
    ----------
    config : Config
        Supplies the rated attributes with their scale and the treatment list.

    Returns
    -------
    EncounterContract
    """
    schema = contract_schema()
    fields: list[ContractField] = []
    attributes_placed = False
    scale = config.attributes.scale
    for spec in schema["fields"]:
        base = _field_from_schema(spec)
        if base.role == "attribute":
            if attributes_placed:
                continue
            attributes_placed = True
            for item in config.attributes.items:
                fields.append(
                    ContractField(
                        name=item.name,
                        type="number",
                        minimum=scale.min,
                        maximum=scale.max,
                        role="attribute",
                        description=f"Patient's rating: {item.description}.",
                    )
                )
        elif base.role == "treatment":
            fields.append(ContractField(**{**base.__dict__, "enum": tuple(config.treatment_names)}))
        else:
            fields.append(base)
    return EncounterContract(
        fields=tuple(fields),
        unique_keys=tuple(tuple(k) for k in schema.get("uniqueKeys", [])),
        missing_values=tuple(schema.get("missingValues", [""])),
        version=str(schema.get("version", "1")),
    )
