"""Helpers for sync tests: a people table, the sync that reads it, what the receiver should hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reverse_etl.sync.config import SyncConfig, parse_sync
from reverse_etl.warehouse import Warehouse

SECRET_ENV = "CDP_TEST_WEBHOOK_SECRET"


def create_people(wh: Warehouse, n: int, *, start: int = 0) -> None:
    """n people with consent for 9 in 10 (ids divisible by 10 have none)."""
    wh.execute(
        f"""
        create or replace table main.people as
        select i as id,
               'user' || i || '@example.com' as email,
               'First' || i as first_name,
               'Last' || (i % 7) as last_name,
               (i * 3) % 100 as score,
               i % 10 <> 0 as consent_email_marketing
        from range({start}, {start + n}) t(i)
        """
    )


def expected_fields(row: dict[str, Any]) -> dict[str, Any]:
    """What the receiver should hold for a people row under `people_sync`'s mapping."""
    return {
        "email": row["email"],
        "name": f"{row['first_name']} {row['last_name']}",
        "score": row["score"],
        "source": "cdp",
    }


def expected_state(wh: Warehouse) -> dict[str, dict[str, Any]]:
    rows = wh.query("select * from main.people where consent_email_marketing")
    return {str(r["id"]): expected_fields(r) for r in rows}


def sync_dict(url: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": {"table": "main.people"},
        "destination": {"type": "webhook", "url": url, "secret": SECRET_ENV},
        "mode": "mirror",
        "primary_key": "id",
        "mapping": {
            "email": "email",
            "name": {"template": "{first_name} {last_name}"},
            "score": {"column": "score"},
            "source": {"constant": "cdp"},
        },
        "consent": ["email_marketing"],
        "batch_size": 50,
        "retry": {"max_attempts": 4, "initial_delay": 0.01, "max_delay": 0.05},
    }
    data.update(overrides)
    return data


def people_sync(url: str, tmp_path: Path, name: str = "people", **overrides: Any) -> SyncConfig:
    return parse_sync(sync_dict(url, **overrides), tmp_path / "syncs" / f"{name}.yml")


def write_sync(directory: Path, name: str, data: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
