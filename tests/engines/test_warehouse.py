"""The warehouse interface the reverse-ETL layer uses, on every engine: one contract, three engines.

DuckDB runs in the default suite; PostgreSQL and Spark run with ``CDP_ENGINE_TESTS=1`` (their markers).
Each test writes DuckDB-dialect SQL, as the sync engine does, and checks what the engine returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from reverse_etl.emulators.base import FaultConfig
from reverse_etl.emulators.webhook import WebhookEmulator
from reverse_etl.sync import state
from reverse_etl.sync.config import parse_sync
from reverse_etl.sync.engine import run_sync
from reverse_etl.warehouse import Warehouse, WarehouseError, WarehouseTarget

ENGINES = [
    "duckdb",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("spark", marks=pytest.mark.spark),
]

SCHEMA = "cdp_contract"


@pytest.fixture(scope="module")
def postgres_target() -> Iterator[WarehouseTarget]:
    from reverse_etl.engines import PostgresCluster, postgres_available

    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with PostgresCluster() as cluster:
        t = cluster.target
        yield WarehouseTarget(
            type="postgres",
            settings={
                "host": t.host,
                "port": t.port,
                "user": t.user,
                "password": t.password,
                "dbname": t.database,
            },
            name="postgres",
        )


@pytest.fixture
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    engine = request.param
    if engine == "duckdb":
        wh = Warehouse(tmp_path / "cdp.duckdb")
    elif engine == "postgres":
        wh = Warehouse(request.getfixturevalue("postgres_target"))
    else:
        from reverse_etl.engines import spark_available, spark_session
        from reverse_etl.warehouse.spark_engine import SparkWarehouse

        reason = spark_available()
        if reason:
            pytest.skip(reason)
        session = spark_session(tmp_path_factory_dir(request), catalog="in-memory")
        wh = SparkWarehouse(
            WarehouseTarget(type="spark", settings={"method": "session"}, name="spark"), session=session
        )
    for statement in (f"drop schema if exists {SCHEMA} cascade", f"create schema {SCHEMA}"):
        wh.execute(statement)
    try:
        yield wh
    finally:
        wh.execute(f"drop schema if exists {SCHEMA} cascade")
        wh.close()


def tmp_path_factory_dir(request: pytest.FixtureRequest) -> Path:
    return request.config._tmp_path_factory.getbasetemp() / "spark_contract"  # type: ignore[attr-defined]


def people(n: int, start: int = 0) -> dict[str, list[Any]]:
    ids = list(range(start, start + n))
    return {
        "id": ids,
        "email": [f"user{i}@example.com" for i in ids],
        "score": [i * 3 % 100 for i in ids],
        "consent": [i % 10 != 0 for i in ids],
        "seen_at": [datetime(2026, 1, 1 + i % 28, 12, 0) for i in ids],
    }


def create_people(wh: Warehouse, n: int) -> None:
    wh.execute(
        f"create table {SCHEMA}.people (id bigint, email varchar, score integer, consent boolean, seen_at timestamp)"
    )
    wh.append(f"{SCHEMA}.people", people(n))


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_reads_writes_and_catalogue(warehouse: Warehouse) -> None:
    create_people(warehouse, 250)
    assert warehouse.relation_exists(SCHEMA, "people")
    assert not warehouse.relation_exists(SCHEMA, "nobody")
    assert warehouse.columns(SCHEMA, "people") == ["id", "email", "score", "consent", "seen_at"]
    assert warehouse.scalar(f"select count(*) from {SCHEMA}.people where consent") == 225
    rows = warehouse.query(f"select id, email, seen_at from {SCHEMA}.people where id = ?", [7])
    assert rows == [{"id": 7, "email": "user7@example.com", "seen_at": datetime(2026, 1, 8, 12, 0)}]
    batches = list(
        warehouse.stream(f"select id from {SCHEMA}.people where id >= ? order by id", [50], batch_size=60)
    )
    assert [len(b) for b in batches][:3] == [60, 60, 60] and sum(len(b) for b in batches) == 200
    assert [r["id"] for b in batches for r in b] == list(range(50, 250))
    warehouse.insert_rows(f"{SCHEMA}.people", ["id", "email"], [(1000, "late@example.com")])
    assert warehouse.scalar(f"select email from {SCHEMA}.people where id = 1000") == "late@example.com"
    with pytest.raises(WarehouseError, match="does not exist"):
        warehouse.require(SCHEMA, "nobody")


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_update_delete_and_literal_percent(warehouse: Warehouse) -> None:
    create_people(warehouse, 20)
    warehouse.execute(f"update {SCHEMA}.people set score = score + 1000, email = ? where id < ?", ["x%y", 5])
    warehouse.execute(
        f"delete from {SCHEMA}.people where id in (select id from {SCHEMA}.people where id >= ?)", [15]
    )
    rows = warehouse.query(f"select id, score, email from {SCHEMA}.people order by id")
    assert [r["id"] for r in rows] == list(range(15))
    assert all(r["score"] >= 1000 and r["email"] == "x%y" for r in rows[:5])
    assert all(r["score"] < 1000 for r in rows[5:])
    assert warehouse.scalar(f"select count(*) from {SCHEMA}.people where email like '%@example.com'") == 10


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_hash_and_json_as_the_sync_engine_writes_them(warehouse: Warehouse) -> None:
    """hash() is deterministic and tells (null, 'a') from ('a', null); to_json keeps null members."""
    rows = warehouse.query(
        "select hash(?, 'a', null) as h1, hash(?, null, 'a') as h2, hash(?, 'a', null) as h3, "
        "to_json(struct_pack(email := 'a@b.c', score := 5, gone := null)) as j",
        ["sig", "sig", "sig"],
    )
    (row,) = rows
    assert row["h1"] == row["h3"] and row["h1"] != row["h2"]
    import json

    assert json.loads(row["j"]) == {"email": "a@b.c", "score": 5, "gone": None}


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_sequence_numbers_and_transactions(warehouse: Warehouse) -> None:
    warehouse.execute(f"create sequence if not exists {SCHEMA}.seq_contract")
    warehouse.execute(
        f"create table {SCHEMA}.journal (seq bigint default nextval('{SCHEMA}.seq_contract'), "
        "item varchar not null, h ubigint)"
    )
    warehouse.append(f"{SCHEMA}.journal", {"item": ["a", "b"], "h": [1, 2]}, {"h": pa.uint64()})
    warehouse.append(f"{SCHEMA}.journal", {"item": ["c"], "h": [3]}, {"h": pa.uint64()})
    rows = warehouse.query(f"select seq, item from {SCHEMA}.journal order by seq")
    assert [r["item"] for r in rows] == ["a", "b", "c"]
    assert len({r["seq"] for r in rows}) == 3
    if warehouse.dialect == "spark":
        return  # Parquet tables have no transactions (see reverse_etl/warehouse/spark_engine.py)
    with pytest.raises(RuntimeError), warehouse.transaction():
        warehouse.append(f"{SCHEMA}.journal", {"item": ["lost"], "h": [4]}, {"h": pa.uint64()})
        raise RuntimeError("crash before commit")
    assert warehouse.scalar(f"select count(*) from {SCHEMA}.journal") == 3


@pytest.mark.parametrize("warehouse", ENGINES, indirect=True)
def test_a_sync_keeps_its_state_in_the_engine(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mirror sync from a table of this engine to the webhook emulator, its state in this engine:
    first run sends every consented row, a change sends only the change, a removal removes."""
    create_people(warehouse, 120)
    emulator = WebhookEmulator(FaultConfig())
    monkeypatch.setenv("CDP_CONTRACT_SECRET", emulator.secret)
    emulator.start()
    try:
        config = parse_sync(
            {
                "source": {"table": f"{SCHEMA}.people"},
                "destination": {"type": "webhook", "url": emulator.url, "secret": "CDP_CONTRACT_SECRET"},
                "mode": "mirror",
                "primary_key": "id",
                "mapping": {"email": "email", "score": {"column": "score"}, "source": {"constant": "cdp"}},
                "consent": [],
                "batch_size": 40,
            },
            tmp_path / "syncs" / "contract_people.yml",
        )
        first = run_sync(config, warehouse)
        assert first.status == "success", first
        assert first.added == 120
        received = dict(emulator.records)
        assert set(received) == {str(i) for i in range(120)}
        assert received["7"] == {"email": "user7@example.com", "score": 21, "source": "cdp"}

        warehouse.execute(f"update {SCHEMA}.people set score = 999 where id = 7")
        warehouse.execute(f"delete from {SCHEMA}.people where id = 8")
        second = run_sync(config, warehouse)
        assert (second.added, second.changed, second.removed) == (0, 1, 1), second
        received = dict(emulator.records)
        assert received["7"]["score"] == 999 and "8" not in received and len(received) == 119

        third = run_sync(config, warehouse)
        assert (third.added, third.changed, third.removed) == (0, 0, 0), third
        runs = warehouse.query(
            f"select status, added, changed, removed from {state.S}.sync_runs where sync_name = ? order by started_at",
            [config.name],
        )
        assert [r["status"] for r in runs] == ["success"] * 3
    finally:
        emulator.stop()
