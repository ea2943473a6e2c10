"""The platform registry: every platform briefbot can talk to, by name.

A platform is a subpackage ``bot/platforms/<name>/`` whose ``__init__`` defines ``SPEC``, a
:class:`~bot.platforms.base.PlatformSpec`; adding one touches only that package, its
loopback server in ``bot/sandbox/`` and its templates in ``templates/<name>/``. The core
loops over :func:`specs` and never names a platform. Specs are light to import: a client
library is loaded only when a platform is built.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from bot.errors import ConfigError
from bot.platforms.base import PlatformSpec

_found: dict[str, PlatformSpec[Any]] | None = None
_added: dict[str, PlatformSpec[Any]] = {}


def _discover() -> dict[str, PlatformSpec[Any]]:
    global _found
    if _found is None:
        found: dict[str, PlatformSpec[Any]] = {}
        for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if not module.ispkg:
                continue
            spec = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SPEC", None)
            if isinstance(spec, PlatformSpec):
                found[spec.name] = spec
        _found = dict(sorted(found.items(), key=lambda entry: (entry[1].order, entry[0])))
    return _found


def specs() -> dict[str, PlatformSpec[Any]]:
    """Every known platform by name, built-in ones first."""
    return {**_discover(), **_added}


def names() -> tuple[str, ...]:
    return tuple(specs())


def spec(name: str) -> PlatformSpec[Any]:
    try:
        return specs()[name]
    except KeyError:
        known = ", ".join(names())
        raise ConfigError(f"unknown platform {name!r}: expected one of {known}") from None


def register(platform: PlatformSpec[Any]) -> None:
    """Add a platform that does not live in this package (a plugin, a test double)."""
    _added[platform.name] = platform


def unregister(name: str) -> None:
    _added.pop(name, None)
