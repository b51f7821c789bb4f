"""Where the bundled default config and the data contract are found.

The files live once at the top of the repository (``configs/``, ``data_schema/``). An
installed wheel carries copies under ``engagekit/_bundled``; an editable install or a
source checkout reads the originals.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent
_CANDIDATE_ROOTS = (_PACKAGE_DIR / "_bundled", _PACKAGE_DIR.parents[1])


def resource_path(relative: str) -> Path:
    """Path of a bundled resource such as ``configs/default.yaml``."""
    for root in _CANDIDATE_ROOTS:
        candidate = root / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"engagekit's bundled file {relative!r} is missing from the installation; "
        "reinstall engagekit"
    )


def default_config_path() -> Path:
    return resource_path("configs/default.yaml")


def contract_schema_path() -> Path:
    return resource_path("data_schema/encounters.schema.json")


@lru_cache(maxsize=1)
def contract_schema() -> dict[str, Any]:
    """The data contract's Table Schema, parsed (read once)."""
    with contract_schema_path().open(encoding="utf-8") as fh:
        return json.load(fh)
