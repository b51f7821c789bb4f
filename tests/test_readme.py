"""The README's Python API example runs as written, and uses only the top-level API."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
from pathlib import Path

import pytest

import engagekit

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    """The code block under the README's "Python API" heading."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)
    assert len(section) == 2, "the README has no '## Python API' section"
    found = re.search(r"```python\n(.*?)```", section[1], flags=re.S)
    assert found, "the README's Python API section has no python code block"
    return found.group(1)


def names_used_from(code: str, alias: str) -> set[str]:
    """Every ``alias.name`` the code looks up."""
    return {
        node.attr
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == alias
    }


def test_every_name_the_example_uses_is_exported_at_the_top_level():
    used = names_used_from(python_example(), "ek")
    assert used, "the example uses nothing from engagekit"
    assert used <= set(engagekit.__all__), sorted(used - set(engagekit.__all__))


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENGAGEKIT_MODEL_KEY", raising=False)
    printed = io.StringIO()
    namespace: dict[str, object] = {"__name__": "readme_example"}
    with contextlib.redirect_stdout(printed):
        exec(compile(python_example(), str(README), "exec"), namespace)

    # what it wrote is there and is what it says
    assert (tmp_path / "encounters.csv").stat().st_size > 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "adherent" in html
    metrics = json.loads((tmp_path / "adherent_model" / "metrics.json").read_text())
    auroc = namespace["auroc"]
    assert metrics["auroc"] == pytest.approx(auroc.value)  # type: ignore[attr-defined]
    assert 0.5 < auroc.value <= 1.0  # type: ignore[attr-defined]
    # the typed result round-trips through its JSON form
    cross, same = namespace["cross"], namespace["same"]
    assert same == cross
    assert "## " in namespace["built"].model_cards["adherent"]  # type: ignore[attr-defined]
    assert printed.getvalue().count("\n") >= 6
