"""Edit a model directory the way someone with write access to it would.

:func:`reseal` rewrites ``integrity.json`` over the directory's files as they now are,
written here from the format the README documents (not with engagekit's own code), so
that a test can reach the checks behind the integrity record with a malformed but
consistent directory, and so that the record's format is itself under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

RECORDED = ("manifest.json", "model.skops", "metrics.json", "model_card.md")


def reseal(directory: Path, key: str | None = None, *, model_sha256: bool = True) -> None:
    """Rewrite ``integrity.json`` to match the files of ``directory`` (signed with
    ``key`` if given); with ``model_sha256``, first point the manifest at the model file
    as it now is."""
    if model_sha256 and (directory / "manifest.json").exists():
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
        except ValueError:
            manifest = None
        if isinstance(manifest, dict):
            manifest["model_sha256"] = _sha256(directory / "model.skops")
            (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    files = {
        name: {"sha256": _sha256(directory / name), "size": (directory / name).stat().st_size}
        for name in RECORDED
        if (directory / name).is_file()
    }
    record: dict[str, Any] = {"format_version": 2, "algorithm": "sha256", "files": files}
    if key is not None:
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        value = hmac.new(key.encode(), canonical, hashlib.sha256).hexdigest()
        record["signature"] = {"algorithm": "hmac-sha256", "value": value}
    (directory / "integrity.json").write_text(json.dumps(record, indent=2))


def edit_json(path: Path, edit: Callable[[Any], object]) -> None:
    """Edit the JSON document at ``path`` in place with ``edit(document)``."""
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document, indent=2))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
