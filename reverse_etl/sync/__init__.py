"""Reverse-ETL syncs: YAML definitions in ``syncs/``, change detection in the warehouse, delivery to
destinations with retries, and bookkeeping in the ``cdp_sync`` schema. ``cli.py`` is the ``cdp sync``
command group; the work lives in ``engine.py``."""

from __future__ import annotations

from reverse_etl.sync.config import (
    SyncConfig,
    SyncConfigError,
    load_sync,
    load_sync_file,
    load_syncs,
    parse_sync,
)
from reverse_etl.sync.engine import PlanResult, RunSummary, plan_sync, reset_sync, run_sync

__all__ = [
    "PlanResult",
    "RunSummary",
    "SyncConfig",
    "SyncConfigError",
    "load_sync",
    "load_sync_file",
    "load_syncs",
    "parse_sync",
    "plan_sync",
    "reset_sync",
    "run_sync",
]
