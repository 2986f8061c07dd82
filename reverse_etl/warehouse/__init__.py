"""The one package that talks to the warehouse.

Everything else (CLI, identity and profile look-ups, the sync engine, privacy) goes through
:class:`Warehouse`: DuckDB (the embedded default), PostgreSQL and Spark implement it, so a further engine
is one more implementation, not edits across the code base.
"""

from __future__ import annotations

from reverse_etl.warehouse.base import (
    ENGINES,
    MARTS_SCHEMA,
    SEGMENTS_SCHEMA,
    SYNC_SCHEMA,
    Location,
    Warehouse,
    WarehouseError,
    WarehouseTarget,
    location_exists,
    lock_anchor,
    target_from_profile,
)

__all__ = [
    "ENGINES",
    "MARTS_SCHEMA",
    "SEGMENTS_SCHEMA",
    "SYNC_SCHEMA",
    "Location",
    "Warehouse",
    "WarehouseError",
    "WarehouseTarget",
    "location_exists",
    "lock_anchor",
    "target_from_profile",
]
