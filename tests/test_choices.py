"""The choices engagekit offers: one Enum each, spelled alike in YAML, JSON, the command
line and the library."""

from __future__ import annotations

import pytest

from engagekit.choices import (
    Adjustment,
    Cluster,
    CovarianceType,
    FlagRuleKind,
    JointTestKind,
    ModelChoice,
    ModelKind,
    WorkingCorrelation,
    as_choice,
)
from engagekit.config import HeterogeneitySettings, load_config
from engagekit.errors import ArgumentError, ConfigError

# the spellings the JSON outputs, YAML configs and command line have always used
SPELLINGS = {
    FlagRuleKind: ("sensitivity", "top_percent", "per_practitioner"),
    Cluster: ("patient", "practitioner"),
    WorkingCorrelation: ("independence", "exchangeable"),
    CovarianceType: ("kauermann_carroll", "bias_reduced", "robust"),
    JointTestKind: ("wald", "score"),
    Adjustment: ("holm", "fdr_bh"),
}
# each setting of the config's heterogeneity block that is a choice
SETTINGS = {
    "cluster": Cluster,
    "working_correlation": WorkingCorrelation,
    "cov_type": CovarianceType,
    "test": JointTestKind,
    "adjustment": Adjustment,
}
SETTING_VALUES = [
    pytest.param(key, value, id=f"{key}={value}")
    for key, kind in SETTINGS.items()
    for value in SPELLINGS[kind]
]


@pytest.mark.parametrize("kind", list(SPELLINGS), ids=lambda kind: kind.__name__)
def test_each_choice_keeps_the_spellings_of_the_outputs(kind):
    assert tuple(choice.value for choice in kind) == SPELLINGS[kind]
    assert all(choice == choice.value for choice in kind)  # a member equals its value


@pytest.mark.parametrize("kind", list(SPELLINGS), ids=lambda kind: kind.__name__)
def test_as_choice_takes_a_member_or_its_value_and_refuses_anything_else(kind):
    for choice in kind:
        assert as_choice(kind, choice, "choice") is choice
        assert as_choice(kind, choice.value, "choice") is choice
    expected = ", ".join(repr(value) for value in SPELLINGS[kind])
    with pytest.raises(ArgumentError, match=f"unknown choice 'Holm'; expected one of {expected}$"):
        as_choice(kind, "Holm", "choice")


@pytest.mark.parametrize(("key", "value"), SETTING_VALUES)
def test_each_analysis_choice_is_read_from_a_yaml_config(tmp_path, key, value):
    path = tmp_path / "config.yaml"
    path.write_text(f"heterogeneity:\n  {key}: {value}\n")
    setting = getattr(load_config(path).heterogeneity, key)
    assert setting is SETTINGS[key](value)
    # and written back as it was read
    assert HeterogeneitySettings(**{key: setting}).model_dump(mode="json")[key] == value


@pytest.mark.parametrize("key", list(SETTINGS))
def test_an_analysis_choice_not_offered_is_refused_naming_the_key_and_the_choices(tmp_path, key):
    path = tmp_path / "config.yaml"
    path.write_text(f"heterogeneity:\n  {key}: sandwich\n")
    *first, last = (f"'{v}'" for v in SPELLINGS[SETTINGS[key]])
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    choices = f"{', '.join(first)} or {last}"
    assert f"heterogeneity.{key}: Input should be {choices} (found 'sandwich')" in str(
        refused.value
    )


def test_every_model_kind_is_a_choice_and_auto_is_the_only_other():
    assert [c.value for c in ModelChoice] == ["auto", *(k.value for k in ModelKind)]
    assert {c.name for c in ModelChoice} == {"AUTO", *(k.name for k in ModelKind)}
