"""Names a package exports but imports only on first use.

``import engagekit`` and ``engagekit --help`` must start in a fraction of a second, so a
package that re-exports something heavy (scikit-learn, statsmodels, matplotlib) names it
in a mapping instead of importing it; :func:`lazy_exports` gives the package's
``__getattr__`` and ``__dir__`` for it (PEP 562).

>>> import types
>>> package = types.ModuleType("demo")
>>> getattr_, dir_ = lazy_exports("json", {"dumps": "json"}, vars(package))
>>> getattr_("dumps")({"a": 1})
'{"a": 1}'
>>> "dumps" in dir_()
True
>>> getattr_("loads")
Traceback (most recent call last):
...
AttributeError: module 'json' has no attribute 'loads'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``names`` map each exported
    name to the module it lives in (absolute, or relative to ``package`` with a leading
    dot). A name is imported on first use and then kept in ``namespace`` (the package's
    ``globals()``), so later look-ups do not come back here."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name], package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
