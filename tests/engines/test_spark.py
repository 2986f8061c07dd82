"""`dbt build` of the whole project on a local Spark session (dbt-spark, session method)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reverse_etl.engines import ENGINE_PROFILES_DIR, load_spark, query_rows, spark_available, spark_session
from tests.engines.conftest import (
    ERASURE_RUN_ARGS,
    EVENTS_REBUILD_ARGS,
    GOLDEN_DAMAGE_SQL,
    GOLDEN_SQL,
    HISTORY_SQL,
    REBUILD_ARGS,
    SESSIONS_DAMAGE_SQL,
    SESSIONS_REBUILD_ARGS,
    SESSIONS_SQL,
    assert_same,
    check_cli_and_sync,
    check_erasure,
    check_history_after_rebuild,
    comparisons,
    dbt,
)


@pytest.fixture(scope="module")
def spark(
    raw_database: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, dict[str, str | None]]]:
    """One Spark session for the module (dbt-spark's session method reuses it), raw tables loaded.
    The in-memory catalog starts faster than a Derby metastore; the tables live as long as the test."""
    reason = spark_available()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("spark")
    started = time.perf_counter()
    session = spark_session(root, catalog="in-memory")
    try:
        loaded = load_spark(raw_database, session)
        assert loaded["segment.pages"] > 0, loaded
        print(f"spark: session start and load {time.perf_counter() - started:.0f}s")
        env: dict[str, str | None] = {
            "CDP_PROFILES_DIR": str(ENGINE_PROFILES_DIR),
            "CDP_SPARK_DIR": str(root),
            "CDP_SPARK_CATALOG": "in-memory",
        }
        yield session, env
    finally:
        session.stop()


@pytest.fixture(scope="module")
def built(spark: tuple[Any, dict[str, str | None]], tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The whole project built once on Spark (unit tests run separately, below)."""
    _, env = spark
    target = ["--target", "spark", "--target-path", str(tmp_path_factory.mktemp("spark_target"))]
    started = time.perf_counter()
    dbt(["build", *target, "--exclude", "test_type:unit"], env)
    print(f"spark: dbt build {time.perf_counter() - started:.0f}s")
    return target


@pytest.mark.spark
def test_build_on_spark_matches_duckdb(
    spark: tuple[Any, dict[str, str | None]], built: list[str], duckdb_reference: dict[str, set[tuple]]
) -> None:
    session, _ = spark
    actual = {name: set(query_rows("spark", sql, spark=session)) for name, sql in comparisons().items()}
    assert_same("spark", duckdb_reference, actual)


@pytest.mark.spark
def test_unit_tests_on_spark(spark: tuple[Any, dict[str, str | None]], built: list[str]) -> None:
    _, env = spark
    dbt(["test", *built, "--select", "test_type:unit"], env)


@pytest.mark.spark
def test_incremental_rebuild_on_spark(spark: tuple[Any, dict[str, str | None]], built: list[str]) -> None:
    """Parquet tables cannot delete rows: segment_membership_history's delete+insert goes through
    macros/engines/spark_delete_insert.sql. A rebuild that empties a segment closes its stays."""
    session, env = spark
    assert query_rows("spark", "select count(*) from marts.customer_id_changes", spark=session) == [(0,)]
    before = query_rows("spark", HISTORY_SQL, spark=session)[0]
    dbt(["build", *built, *REBUILD_ARGS], env)
    check_history_after_rebuild(before, query_rows("spark", HISTORY_SQL, spark=session)[0])


@pytest.mark.spark
def test_incremental_sessions_repair_on_spark(
    spark: tuple[Any, dict[str, str | None]], built: list[str], duckdb_reference: dict[str, set[tuple]]
) -> None:
    """customer_sessions' cdp_replace_keys strategy on Parquet (a rewrite, macros/engines/): a visitor
    whose stored sessions disagree with customer_events is sessionised again, one with no events goes.
    int_golden_records, by the same strategy, drops a customer it does not know and a second copy."""
    session, env = spark
    count = "select count(*) from marts.customer_sessions"
    before = query_rows("spark", count, spark=session)[0][0]
    for sql in SESSIONS_DAMAGE_SQL:
        session.sql(sql)
    assert query_rows("spark", count, spark=session)[0][0] > before
    dbt(["run", *built, *SESSIONS_REBUILD_ARGS], env)
    actual = set(query_rows("spark", SESSIONS_SQL, spark=session))
    assert_same("spark", duckdb_reference, {"customer_sessions": actual})
    golden = set(query_rows("spark", GOLDEN_SQL, spark=session))
    for sql in GOLDEN_DAMAGE_SQL:
        session.sql(sql)
    dbt(["run", *built, *EVENTS_REBUILD_ARGS], env)
    actual = set(query_rows("spark", SESSIONS_SQL, spark=session))
    assert_same("spark", duckdb_reference, {"customer_sessions": actual})
    # int_golden_records drops the ghost and the second copy (strategy cdp_replace_keys).
    rows = query_rows("spark", GOLDEN_SQL, spark=session)
    assert len(rows) == len(golden) and set(rows) == golden


@pytest.mark.spark
def test_cli_and_a_sync_on_spark(
    spark: tuple[Any, dict[str, str | None]], built: list[str], tmp_path: Path
) -> None:
    """`cdp --target spark` reads identity, profiles and segments there; a sync keeps its state there."""
    check_cli_and_sync(spark[1], "spark", tmp_path)


@pytest.mark.spark
def test_an_erasure_nulls_the_identifiers_on_stored_events_on_spark(
    spark: tuple[Any, dict[str, str | None]], built: list[str]
) -> None:
    """As on PostgreSQL: the stored events of a forgotten customer lose the forgotten identifiers."""
    session, env = spark

    def execute(statements: list[str]) -> None:
        for sql in statements:
            session.sql(sql)

    check_erasure(
        lambda sql: query_rows("spark", sql, spark=session),
        execute,
        lambda: dbt(["run", *built, *ERASURE_RUN_ARGS], env),
    )
