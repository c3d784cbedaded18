"""Lazy package exports (PEP 562): a package names what it exports and from which submodule, and a name's
submodule is imported on first use, so importing the package stays cheap (`streamtune --help`)."""

from __future__ import annotations

import importlib
from typing import Any, Callable, MutableMapping


def lazy_exports(
    package: str, exports: dict[str, str], namespace: MutableMapping[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(__getattr__, __dir__) for `package`: `exports` maps a name to its submodule, relative to the package."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
