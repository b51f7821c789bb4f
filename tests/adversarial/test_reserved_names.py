"""Reserved names: a config cannot make a contract column a rating or a predictor.

An attribute named ``attended_next`` once leaked the target into the model (AUROC
1.000, saved without a word). The config refuses such a name, naming the clash; behind
it, the feature transformer (and so ``fit_model`` and ``train``) refuses any feature
read from an outcome column even when the config check is bypassed.
"""

from __future__ import annotations

import json

import pytest

from _cli import assert_no_traceback, run
from _factories import valid_encounter_rows, write_csv
from engagekit import encounter_contract, load_config
from engagekit._resources import contract_schema
from engagekit.config import DESCRIPTIVE_COLUMNS, OUTCOME_NAMES, Attribute, config_from_dict
from engagekit.errors import ConfigError
from engagekit.features import EncounterFeatures
from engagekit.models import fit_model

#: every column of the contract that is not a rating field, read from the schema itself
CONTRACT_COLUMNS = [
    spec["name"]
    for spec in contract_schema()["fields"]
    if spec.get("engagekit:role") != "attribute"
]
NOT_PREDICTORS = [c for c in CONTRACT_COLUMNS if c not in DESCRIPTIVE_COLUMNS]


def _item(name: str) -> dict:
    return {"name": name, "label": name, "description": "d", "suggestion": "s"}


def _attributes(*names: str) -> dict:
    return {"attributes": {"scale": {"min": 1, "max": 5}, "items": [_item(n) for n in names]}}


def test_the_lists_cover_the_contract():
    # a column added to the contract is reserved at once (it is not descriptive until
    # someone says so), and the outcomes and ids are among the reserved
    assert set(OUTCOME_NAMES) | {"patient_id", "encounter_id", "treatment"} <= set(NOT_PREDICTORS)
    assert set(DESCRIPTIVE_COLUMNS) <= set(CONTRACT_COLUMNS)
    assert len(CONTRACT_COLUMNS) == 12


@pytest.mark.parametrize("column", CONTRACT_COLUMNS)
def test_an_attribute_named_as_a_contract_column_is_refused(column):
    with pytest.raises(ConfigError) as info:
        config_from_dict(_attributes("warmth", column))
    message = str(info.value)
    assert "attributes: an attribute may not take the name of a column" in message
    assert repr(column) in message


@pytest.mark.parametrize("key", ["covariates", "subgroups"])
@pytest.mark.parametrize("column", NOT_PREDICTORS)
def test_a_covariate_or_subgroup_naming_a_reserved_column_is_refused(key, column):
    with pytest.raises(ConfigError) as info:
        config_from_dict({key: ["age_band", column]})
    message = str(info.value)
    assert f"  - {key}: a {key.removesuffix('s')} must be a column that describes" in message
    assert repr(column) in message
    assert "'age_band' is" not in message


@pytest.mark.parametrize("key", ["covariates", "subgroups"])
def test_a_covariate_or_subgroup_naming_an_attribute_is_refused(key):
    with pytest.raises(ConfigError, match=rf"{key}: .*'empathy' is a rated attribute"):
        config_from_dict({key: ["empathy"]})


@pytest.mark.parametrize("key", ["covariates", "subgroups"])
@pytest.mark.parametrize("column", [*DESCRIPTIVE_COLUMNS, "income", "referral_source"])
def test_descriptive_and_own_columns_are_still_allowed(key, column):
    assert getattr(config_from_dict({key: [column]}), key) == [column]


def test_every_clash_is_named_at_once():
    with pytest.raises(ConfigError) as info:
        config_from_dict(
            {
                **_attributes("attended_next", "patient_id"),
                "covariates": ["adherent", "session_number"],
                "subgroups": ["encounter_id"],
            }
        )
    message = str(info.value)
    for name in ("attended_next", "patient_id", "adherent", "session_number", "encounter_id"):
        assert repr(name) in message, name
    assert "would see the answer it predicts" in message


def test_train_refuses_the_config_and_writes_no_model(tmp_path):
    # the example: an attribute named attended_next
    write_csv(valid_encounter_rows(40, 3), tmp_path / "encounters.csv")
    (tmp_path / "leak.yaml").write_text(
        json.dumps(_attributes("empathy", "attended_next")), encoding="utf-8"
    )
    result = run(
        "train",
        "encounters.csv",
        "--target",
        "attended_next",
        "--out",
        "model",
        "--config",
        "leak.yaml",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert_no_traceback(result)
    assert "'attended_next' is an outcome" in result.stderr
    assert not (tmp_path / "model").exists()


# ------------------------------------------------------------ the second line of defence


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"attributes": ("empathy", "attended_next")}, "the attribute 'attended_next'"),
        ({"attributes": ("adherent",)}, "the attribute 'adherent'"),
        ({"covariates": ("attended_next",)}, "the covariate 'attended_next'"),
        ({"covariates": ("age_band", "adherent")}, "the covariate 'adherent'"),
    ],
)
def test_the_transformer_refuses_a_feature_read_from_an_outcome(make_encounters, parameters, named):
    table = make_encounters(n_patients=20, seed=1)
    features = EncounterFeatures(
        **{"attributes": ("empathy",), "treatments": ("cbt_online",), **parameters}
    )
    with pytest.raises(ConfigError, match="features may not be read from an outcome") as info:
        features.fit(table)
    assert named in str(info.value)


def _bypassing_the_config_check(**update):
    """A Config whose fields were changed without validation, as a caller could."""
    return load_config().model_copy(update=update)


@pytest.mark.parametrize("target", OUTCOME_NAMES)
@pytest.mark.parametrize("how", ["attribute", "covariate"])
def test_fit_model_refuses_the_target_as_a_feature(make_encounters, target, how):
    cfg = load_config()
    if how == "attribute":
        items = [*cfg.attributes.items, Attribute(**_item(target))]
        leaky = _bypassing_the_config_check(
            attributes=cfg.attributes.model_copy(update={"items": items})
        )
    else:
        leaky = _bypassing_the_config_check(covariates=[*cfg.covariates, target])
    table = make_encounters(n_patients=40, seed=2)
    with pytest.raises(ConfigError, match=rf"features may not be read from an outcome.*{target}"):
        fit_model(table, target, "logistic", leaky)


def test_the_contract_still_has_the_columns_the_check_reads():
    # the reserved names come from data_schema; the contract built from it agrees
    names = encounter_contract(load_config()).names
    assert all(c in names for c in CONTRACT_COLUMNS)
