"""Crafted YAML configs: each is refused quickly with a ConfigError and a short message.

A 357-byte config of nested anchors ("billion laughs") once ran for minutes and took
gigabytes, because an error message printed the expanded value. The expansion bombs run
in a child process with a memory and time limit, so that a regression fails the test
instead of taking the machine down.
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from _cli import assert_no_traceback, run
from _factories import valid_encounter_rows, write_csv
from engagekit.config import MAX_CONFIG_BYTES, MAX_CONFIG_VALUES, load_config
from engagekit.errors import ConfigError

#: no config message is longer than this, whatever the config holds
MESSAGE_LIMIT = 2_500


def _laughs(depth: int, key: str = "covariates", width: int = 9) -> str:
    """The billion-laughs document: ``depth`` anchors, each ``width`` aliases of the last."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, depth):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    lines.append(f"{key}: *a{depth - 1}")
    return "\n".join(lines) + "\n"


def _mapping_laughs(depth: int) -> str:
    lines = ["a0: &a0 {" + ", ".join(f"k{k}: lol" for k in range(9)) + "}"]
    for level in range(1, depth):
        inner = ", ".join(f"k{k}: *a{level - 1}" for k in range(9))
        lines.append(f"a{level}: &a{level} {{{inner}}}")
    lines.append(f"simulation: *a{depth - 1}")
    return "\n".join(lines) + "\n"


def _merge_laughs(depth: int) -> str:
    lines = ["a0: &a0 {" + ", ".join(f"k{k}: [lol, lol, lol]" for k in range(9)) + "}"]
    for level in range(1, depth):
        merged = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} {{<<: [{merged}], x{level}: *a{level - 1}}}")
    lines.append(f"heterogeneity: *a{depth - 1}")
    return "\n".join(lines) + "\n"


# Documents that expand to far more than the bound, or that recurse: the kind that
# hung engagekit. The original was 357 bytes; depth 9 is it.
BOMBS = {
    **{f"billion laughs, depth {d}": _laughs(d) for d in (6, 7, 9, 12)},
    "billion laughs, 30 levels of 2": _laughs(30, width=2),
    "billion laughs under attributes": _laughs(9, key="attributes"),
    "billion laughs in mappings": _mapping_laughs(8),
    "billion laughs through merge keys": _merge_laughs(8),
    "billion laughs as a mapping key": _laughs(8, key="? *a7\n:"),
    "a recursive alias": "covariates: &a [*a, *a]\n",
    "a recursive mapping": "simulation: &s {rating: *s}\n",
}

_CHILD = """
import sys, time
from engagekit.config import load_config
from engagekit.errors import ConfigError
start = time.perf_counter()
try:
    load_config(sys.argv[1])
except ConfigError as e:
    print(f"REFUSED in {time.perf_counter() - start:.2f}s")
    print(e)
    sys.exit(0)
print("LOADED")
sys.exit(3)
"""


def _limit_memory() -> None:
    # 1 GiB of address space: the unbounded expansion took gigabytes
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _load_in_child(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
    )


@pytest.mark.parametrize("case", list(BOMBS))
def test_an_expansion_bomb_is_refused_at_once(tmp_path, case):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMBS[case], encoding="utf-8")
    done = _load_in_child(path)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])
    first, _, message = done.stdout.partition("\n")
    assert float(first.split()[-1].rstrip("s")) < 5.0, first
    assert len(message) < MESSAGE_LIMIT, message[:MESSAGE_LIMIT]
    assert str(path) in message
    assert "lol" not in message


def test_the_bound_is_on_values_after_expansion_not_on_bytes(tmp_path):
    # just under the bound: 8**5 = 32,768 strings, twice over (as a4 and as covariates),
    # with the lists holding them about 80,000 values: big but finite, so it gets to the
    # validation, whose message must still be short
    path = tmp_path / "c.yaml"
    path.write_text(_laughs(5, width=8), encoding="utf-8")
    assert 2 * 8**5 < MAX_CONFIG_VALUES < 2 * 9**5
    with pytest.raises(ConfigError, match=r"covariates\.0: Input should be a valid string") as e:
        load_config(path)
    assert len(str(e.value)) < MESSAGE_LIMIT


def _deep_flow(levels: int) -> str:
    return "covariates: " + "[" * levels + "]" * levels + "\n"


def _deep_block(levels: int) -> str:
    return "".join("  " * k + f"k{k}:\n" for k in range(levels)) + "  " * levels + "x: 1\n"


HOSTILE = {
    # nesting
    "60 levels of flow lists": (_deep_flow(60), r"nested more than 50 levels deep"),
    "10,000 levels of flow lists": (
        _deep_flow(10_000),
        r"nested more than 50 levels deep|exceeded maximum nesting depth",
    ),
    "60 levels of block mappings": (_deep_block(60), r"nested more than 50 levels deep"),
    # size
    "a 900 kB string": ("covariates: " + "x" * 900_000 + "\n", r"covariates: .*valid list"),
    "a 900 kB key": ("x" * 900_000 + ": 1\n", r"not valid YAML|unknown key"),
    "a 600 kB quoted key": ('"' + "k" * 600_000 + '": 1\n', r"not valid YAML|unknown key"),
    "a number of 5,000 digits": ("config_version: " + "9" * 5000 + "\n", r"not valid YAML"),
    "a number of 4,000 digits": ("config_version: " + "9" * 4000 + "\n", r"config_version"),
    "200,000 list items": ("covariates: [" + "a," * 200_000 + "a]\n", r"more than 100,000"),
    "5,000 unknown keys": (
        "".join(f"k{k}: {k}\n" for k in range(5000)),
        r"unknown key[\s\S]*and 4980 more problem",
    ),
    "over the size cap": ("# " + "x" * (MAX_CONFIG_BYTES + 10) + "\n", r"larger than 1,000,000"),
    # bytes that are not a YAML text
    "latin-1": (b"covariates: [caf\xe9]\n", r"not UTF-8 text \(byte 0xe9"),
    "random bytes": (bytes(range(256)) * 4, r"not UTF-8 text|not valid YAML"),
    "a NUL byte": (b"covariates: [a\x00b]\n", r"not valid YAML"),
    "UTF-16": ("covariates: []\n".encode("utf-16"), r"not UTF-8 text"),
    "a control character": ("covariates: [a\x07]\n", r"not valid YAML"),
    # values the YAML constructor cannot build
    "a date that does not exist": ("simulation: {start_date: 2025-02-30}\n", r"not valid YAML"),
    "a list as a mapping key": ("? [a, b]\n: 1\n", r"not valid YAML"),
    "an undefined alias": ("covariates: *nowhere\n", r"not valid YAML.*undefined alias"),
    "two documents": ("covariates: []\n---\ncovariates: []\n", r"not valid YAML"),
    "a Python tag": ("covariates: !!python/object/apply:os.system [echo]\n", r"not valid YAML"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_config_gets_one_short_config_error(tmp_path, case):
    text, pattern = HOSTILE[case]
    path = tmp_path / "hostile.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert len(message) < MESSAGE_LIMIT, message[:MESSAGE_LIMIT]
    assert re.search(pattern, message), message[:MESSAGE_LIMIT]
    # never a long run of the hostile text itself
    assert "x" * 100 not in message and "k" * 100 not in message and "9" * 100 not in message


def test_small_legitimate_anchors_still_work(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "treatments:\n"
        "  - &usual {name: usual_care, label: Usual care}\n"
        "  - {name: cbt_online, label: CBT online}\n"
        "covariates: &descriptive [age_band, gender]\n"
        "subgroups: *descriptive\n"
        "simulation:\n"
        "  age_band: &shares {shares: {young: 1, old: 1}}\n"
        "  gender:\n"
        "    <<: *shares\n",
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert cfg.treatment_names == ["usual_care", "cbt_online"]
    assert cfg.covariates == cfg.subgroups == ["age_band", "gender"]
    assert cfg.simulation.gender.shares == {"young": 1, "old": 1}


def test_the_command_line_refuses_a_bomb_with_exit_2(tmp_path):
    (tmp_path / "bomb.yaml").write_text(_laughs(9), encoding="utf-8")
    write_csv(valid_encounter_rows(2, 2), tmp_path / "encounters.csv")
    result = run("validate", "encounters.csv", "--config", "bomb.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "more than 100,000 values" in result.stderr
    assert len(result.stderr) < MESSAGE_LIMIT
