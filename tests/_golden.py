"""The demo's outputs as a record to compare with a golden copy.

A refactor must not change what engagekit computes or says. :func:`demo_record` reads a
demo folder into plain data: every JSON result, the forecast table, the model cards and
the report's visible text, with what legitimately differs between two runs masked (the
folder's path, creation times, library versions, hashes of the model file's bytes).
:func:`differences` compares two records: strings and integers exactly, floats to a
relative 1e-6 (another BLAS build may change the last bits), and a number shown in text
to one unit of its last digit (a value on a rounding boundary may round either way).

``python tests/_golden.py DEMO_FOLDER tests/data/golden_demo`` writes the golden copy.
"""

from __future__ import annotations

import csv
import html
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

#: JSON files of the demo, relative to its folder
JSON_FILES = (
    "validation.json",
    "summary.json",
    "metrics.json",
    "heterogeneity_attended_next.json",
    "heterogeneity_adherent.json",
    "models/attended_next/manifest.json",
    "models/attended_next/metrics.json",
    "models/adherent/manifest.json",
    "models/adherent/metrics.json",
    "monitoring_attended_next.json",
)
TEXT_FILES = ("model_card_attended_next.md", "model_card_adherent.md")
#: keys whose values differ between two runs of the same code (or name the code itself)
VOLATILE_KEYS = frozenset(
    {"created", "versions", "model_sha256", "model_file", "format_version", "library_versions"}
)
_DATA_URI = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")
_TAG = re.compile(r"<[^>]+>")
_NUMBER = re.compile(r"[-+−]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?(?:\s*UTC|[+-]\d{2}:\d{2})?")
_SHA = re.compile(r"\b[0-9a-f]{64}\b")
_VERSION = re.compile(r"\b\d+\.\d+\.\d+(?:\.\w+)?\b")


def _folder_pattern(folder: Path) -> re.Pattern[str]:
    """The demo folder as the outputs name it: its absolute path, or the relative path
    it was given as (``out``), followed by a ``/``."""
    names = sorted({str(folder.resolve()), str(folder), folder.name}, key=len, reverse=True)
    return re.compile(r"(?<![\w/.-])(?:" + "|".join(map(re.escape, names)) + r")(?=/)")


def _masked(value: Any, folder: re.Pattern[str]) -> Any:
    if isinstance(value, dict):
        return {k: _masked(v, folder) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_masked(v, folder) for v in value]
    if isinstance(value, str):
        return folder.sub("<demo>", value)
    return value


def _text(text: str, folder: re.Pattern[str]) -> list[str]:
    """Words of a text, with times, versions and the folder masked."""
    text = folder.sub("<demo>", text)
    text = _TIME.sub("<time>", text)
    text = _VERSION.sub("<version>", text)
    return text.split()


def report_words(page: str, folder: re.Pattern[str]) -> list[str]:
    """The report's visible words (tags and embedded images left out)."""
    page = _DATA_URI.sub("", page)
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S)
    # the model file's hash differs between runs (the skops archive's times); the data's
    # hash is compared in the JSON files
    return _text(_SHA.sub("<sha>", html.unescape(_TAG.sub(" ", page))), folder)


def demo_record(folder: Path) -> dict[str, Any]:
    """The demo's outputs in ``folder`` as plain, comparable data."""
    root = _folder_pattern(folder)
    record: dict[str, Any] = {}
    for name in JSON_FILES:
        record[name] = _masked(json.loads((folder / name).read_text()), root)
    with (folder / "forecast.csv").open(newline="") as fh:
        record["forecast.csv"] = list(csv.reader(fh))
    for name in TEXT_FILES:
        record[name] = _text(_SHA.sub("<sha>", (folder / name).read_text()), root)
    record["report.html"] = report_words((folder / "report.html").read_text(), root)
    return record


def _number(token: str) -> float | None:
    match = _NUMBER.fullmatch(token.strip(".,;:()%×"))
    if match is None:
        return None
    try:
        return float(match.group().replace(",", "").replace("−", "-"))
    except ValueError:
        return None


def _last_unit(token: str) -> float:
    digits = token.strip(".,;:()%×").split("e")[0]
    return 10.0 ** -len(digits.split(".")[1]) if "." in digits else 1.0


def differences(actual: Any, expected: Any, where: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected`` beyond the tolerances (module doc)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: a mapping is now {type(actual).__name__}"]
        found = []
        for key in expected.keys() | actual.keys():
            if key not in actual:
                found.append(f"{where}/{key}: missing")
            elif key not in expected:
                found.append(f"{where}/{key}: new")
            else:
                found += differences(actual[key], expected[key], f"{where}/{key}")
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            n = len(actual) if isinstance(actual, list) else type(actual).__name__
            return [f"{where}: {len(expected)} items, now {n}"]
        found = []
        for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
            found += differences(a, e, f"{where}[{k}]")
        return found
    if isinstance(expected, float) and isinstance(actual, int | float):
        if math.isnan(expected) and math.isnan(actual):
            return []
        if math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-9):
            return []
        return [f"{where}: {expected!r} is now {actual!r}"]
    if isinstance(expected, str) and isinstance(actual, str) and expected != actual:
        a, e = _number(actual), _number(expected)
        if a is not None and e is not None and abs(a - e) <= _last_unit(expected) * 1.000001:
            return []
        return [f"{where}: {expected!r} is now {actual!r}"]
    if expected != actual or type(expected) is not type(actual):
        return [f"{where}: {expected!r} is now {actual!r}"]
    return []


def main(folder: str, golden: str) -> None:
    out = Path(golden)
    out.mkdir(parents=True, exist_ok=True)
    record = demo_record(Path(folder))
    (out / "demo_record.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"golden record of {folder} → {out / 'demo_record.json'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
