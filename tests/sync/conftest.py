"""Fixtures for sync tests: a warehouse in a temp dir with a people table, a signed webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reverse_etl.emulators.base import FaultConfig
from reverse_etl.emulators.webhook import WebhookEmulator
from reverse_etl.warehouse import Warehouse

from .helpers import SECRET_ENV, create_people


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookEmulator]:
    em = WebhookEmulator(FaultConfig())
    monkeypatch.setenv(SECRET_ENV, em.secret)
    em.start()
    try:
        yield em
    finally:
        em.stop()


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    warehouse = Warehouse(tmp_path / "warehouse" / "cdp.duckdb")
    create_people(warehouse, 300)
    try:
        yield warehouse
    finally:
        warehouse.close()
