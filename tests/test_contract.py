"""The contract file and the default config describe the same table."""

import json
from pathlib import Path

import pytest

from _factories import COLUMNS
from engagekit import encounter_contract, load_config
from engagekit.config import config_from_dict

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "data_schema" / "encounters.schema.json").read_text())
CONTRACT_DOC = list(COLUMNS)  # the column table of data-contract.md, in order


def test_schema_lists_the_documented_columns_in_order():
    assert [f["name"] for f in SCHEMA["fields"]] == CONTRACT_DOC


def test_schema_defaults_match_the_default_config():
    cfg = load_config()
    attribute_fields = [f for f in SCHEMA["fields"] if f.get("engagekit:role") == "attribute"]
    assert [f["name"] for f in attribute_fields] == cfg.attribute_names
    for f in attribute_fields:
        assert f["constraints"]["minimum"] == cfg.attributes.scale.min
        assert f["constraints"]["maximum"] == cfg.attributes.scale.max
    (treatment,) = [f for f in SCHEMA["fields"] if f.get("engagekit:role") == "treatment"]
    assert treatment["constraints"]["enum"] == cfg.treatment_names


@pytest.mark.parametrize(
    ("name", "required", "type_"),
    [
        ("patient_id", True, "string"),
        ("encounter_id", True, "string"),
        ("session_number", True, "integer"),
        ("treatment", True, "string"),
        ("encounter_date", False, "date"),
        ("empathy", False, "number"),
        ("attended_next", False, "integer"),
        ("adherent", False, "integer"),
        ("gender", False, "string"),
    ],
)
def test_default_contract_fields(name, required, type_):
    field = encounter_contract(load_config())[name]
    assert (field.required, field.type) == (required, type_)


def test_config_replaces_attributes_and_treatments():
    cfg = config_from_dict(
        {
            "attributes": {
                "scale": {"min": 0, "max": 10},
                "items": [
                    {"name": "warmth", "label": "W", "description": "d", "suggestion": "s"},
                    {"name": "clarity", "label": "C", "description": "d", "suggestion": "s"},
                ],
            },
            "treatments": [{"name": "yoga", "label": "Yoga"}],
        }
    )
    contract = encounter_contract(cfg)
    assert [f.name for f in contract.by_role("attribute")] == ["warmth", "clarity"]
    assert (contract["warmth"].minimum, contract["warmth"].maximum) == (0, 10)
    assert "empathy" not in contract
    assert contract["treatment"].enum == ("yoga",)
    # the attributes take the place of the default ones, before the demographic columns
    assert contract.names.index("clarity") + 1 == contract.names.index("age_band")
