"""Loopback HTTP servers that follow each vendor's contract, so connectors are tested over real HTTP
with no internet. One module per vendor; REGISTRY maps destination name -> "module:Class"."""

from __future__ import annotations

import importlib

from reverse_etl.emulators.base import Emulator, FaultConfig

REGISTRY: dict[str, str] = {
}


def emulator_class(name: str) -> type[Emulator]:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise KeyError(f"no emulator for '{name}'; emulators exist for {', '.join(sorted(REGISTRY))}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


__all__ = ["Emulator", "FaultConfig", "REGISTRY", "emulator_class"]
