"""Tests of engagekit.config: the defaults, partial override files, and bad configs
refused with a message naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from _factories import ATTRIBUTES, TREATMENTS
from engagekit import ConfigError, load_config
from engagekit.config import config_from_dict

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_ATTRIBUTES = list(ATTRIBUTES)
DEFAULT_TREATMENTS = list(TREATMENTS)

ITEM = "{name: warmth, label: Warmth, description: feels warm, suggestion: be warm}"


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "service.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_load():
    cfg = load_config()
    assert cfg.attribute_names == DEFAULT_ATTRIBUTES
    assert (cfg.attributes.scale.min, cfg.attributes.scale.max) == (1, 5)
    assert cfg.treatment_names == DEFAULT_TREATMENTS
    assert cfg.outcome_names == ["attended_next", "adherent"]
    assert cfg.covariates == ["age_band"]
    assert cfg.subgroups == ["age_band", "gender"]
    assert cfg.attribute("empathy").label == "Empathy and positive regard"


def test_the_default_file_is_the_defaults():
    assert load_config(ROOT / "configs" / "default.yaml") == load_config()


@pytest.mark.parametrize("text", ["", "# nothing to change\n", "config_version: 1\n"])
def test_a_file_changing_nothing_gives_the_defaults(tmp_path, text):
    assert load_config(_yaml(tmp_path, text)) == load_config()


def test_a_file_overriding_treatments_keeps_the_other_blocks(tmp_path):
    path = _yaml(
        tmp_path,
        "treatments:\n  - {name: group_cbt, label: Group CBT}\n  - {name: yoga, label: Yoga}\n",
    )
    cfg, default = load_config(path), load_config()
    assert cfg.treatment_names == ["group_cbt", "yoga"]
    assert cfg.attributes == default.attributes
    assert cfg.outcomes == default.outcomes
    assert cfg.covariates == default.covariates
    assert cfg.simulation == default.simulation


def test_a_file_overriding_attributes_replaces_the_whole_block(tmp_path):
    path = _yaml(tmp_path, f"attributes:\n  scale: {{min: 0, max: 10}}\n  items:\n    - {ITEM}\n")
    cfg, default = load_config(path), load_config()
    assert cfg.attribute_names == ["warmth"]
    assert (cfg.attributes.scale.min, cfg.attributes.scale.max) == (0, 10)
    assert cfg.attributes.scale.points_per_default_point == 2.5
    assert cfg.treatment_names == DEFAULT_TREATMENTS
    assert cfg.simulation == default.simulation


def test_config_from_dict_lays_blocks_over_the_defaults():
    cfg = config_from_dict({"covariates": ["age_band", "gender"]})
    assert cfg.covariates == ["age_band", "gender"]
    assert cfg.attribute_names == DEFAULT_ATTRIBUTES


# Each bad config, as YAML, and a pattern the message must match: it names the key path
# (or the file, when the file itself is the problem).
BAD_CONFIGS = {
    "unknown top-level key": ("treatmnets: []\n", r"treatmnets: unknown key"),
    "unknown nested key": (
        f"attributes:\n  scale: {{min: 1, max: 5, mid: 3}}\n  items: [{ITEM}]\n",
        r"attributes\.scale\.mid: unknown key",
    ),
    "unknown simulation key": (
        "simulation:\n  rating: {noise: 0.3}\n",
        r"simulation\.rating\.noise: unknown key",
    ),
    "wrong type, number": (
        f"attributes:\n  scale: {{min: low, max: 5}}\n  items: [{ITEM}]\n",
        r"attributes\.scale\.min: .*number.*'low'",
    ),
    "wrong type, list": ("treatments: cbt\n", r"treatments: .*list.*'cbt'"),
    "wrong type, nested": (
        "treatments:\n  - {name: cbt, label: CBT, simulated: {interval_days: 0}}\n",
        r"treatments\.0\.simulated\.interval_days: .*greater than or equal to 1",
    ),
    "scale max equal to min": (
        f"attributes:\n  scale: {{min: 5, max: 5}}\n  items: [{ITEM}]\n",
        r"attributes\.scale: max \(5(\.0)?\) must be greater than min \(5(\.0)?\)",
    ),
    "scale max below min": (
        f"attributes:\n  scale: {{min: 5, max: 1}}\n  items: [{ITEM}]\n",
        r"attributes\.scale: max \(1(\.0)?\) must be greater than min \(5(\.0)?\)",
    ),
    "no attribute": (
        "attributes:\n  scale: {min: 1, max: 5}\n  items: []\n",
        r"attributes\.items: .*at least 1 item",
    ),
    "duplicate attribute": (
        f"attributes:\n  scale: {{min: 1, max: 5}}\n  items: [{ITEM}, {ITEM}]\n",
        r"attributes: attribute names must be unique; repeated: \['warmth'\]",
    ),
    "attribute name not an identifier": (
        "attributes:\n  scale: {min: 1, max: 5}\n"
        "  items: [{name: 'active listening', label: A, description: d, suggestion: s}]\n",
        r"attributes\.items\.0\.name: .*pattern",
    ),
    "unknown outcome key, attribute": (
        "attributes:\n  scale: {min: 1, max: 5}\n  items:\n"
        "    - {name: w, label: W, description: d, suggestion: s, simulated: {relapse: 0.1}}\n",
        r"attributes\.items\.0: simulated names unknown outcome\(s\) \['relapse'\]",
    ),
    "unknown outcome key, effects": (
        "simulation:\n  effects:\n    rating_change: {relapse: 0.4}\n",
        r"simulation\.effects: rating_change names unknown outcome\(s\) \['relapse'\]",
    ),
    "unknown outcome": (
        "outcomes:\n  - {name: relapse, label: R, description: d, bad_outcome: b}\n",
        r"outcomes\.0: outcome 'relapse' is not one engagekit models",
    ),
    "NaN": (
        "simulation:\n  rating:\n    noise_sd: .nan\n",
        r"simulation\.rating\.noise_sd.*NaN|NaN.*simulation\.rating\.noise_sd",
    ),
    "not YAML": ("attributes: [unclosed\n  - x: {\n", r"is not valid YAML"),
    "a YAML list": ("- attributes\n- treatments\n", r"must be a YAML mapping .*found a list"),
    "a YAML string": ("hello\n", r"must be a YAML mapping .*found a str"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_a_bad_config_names_the_key(tmp_path, case):
    text, pattern = BAD_CONFIGS[case]
    path = _yaml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert re.search(pattern, message), message
    assert str(path) in message


def test_a_missing_config_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"config file '.*nope\.yaml' does not exist"):
        load_config(path)


def test_a_folder_as_config(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path)


def test_config_errors_are_value_errors():
    with pytest.raises(ValueError, match=r"attributes\.scale"):
        config_from_dict({"attributes": {"scale": {"min": 3, "max": 2}, "items": []}})


def test_every_problem_of_a_config_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"covariates": "x", "subgroups": 3, "colour": "red"})
    message = str(info.value)
    for key in ("covariates", "subgroups", "colour"):
        assert re.search(rf"^  - {key}: ", message, flags=re.MULTILINE), message
