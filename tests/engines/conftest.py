"""The same dbt project on other engines (PostgreSQL, Spark), compared with DuckDB on the same data.

These tests start a PostgreSQL server or a Spark JVM and take minutes, so they run only when asked:
``CDP_ENGINE_TESTS=1 pytest tests/engines -m postgres`` (or ``-m spark``); see docs/engines.md.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
import yaml

from reverse_etl.datagen import generate
from reverse_etl.dbt import DbtResult, run_dbt
from tests.conftest import PROJECT

# Persons generated for the cross-engine comparison: enough for merges, refunds and every segment.
CUSTOMERS = 300

ENGINE_MARKERS = ("postgres", "spark")

# What is compared across engines: the identity graph (customer ids derive from md5 of the anchor, so
# they agree everywhere), segment membership, the core traits, RFM and churn-risk reason (ties share a
# score, so they agree too) and golden-record fields of each survivorship rule (email most_recent,
# first_name source_priority, country most_frequent).
GRAPH_SQL = "select identifier_type, identifier_value, customer_id from marts.identity_graph"
SEGMENTS_SQL = "select segment_name, customer_id from marts.segment_members"
TRAITS_SQL = (
    "select customer_id, orders, cast(round(lifetime_value, 2) as decimal(18, 2)), page_views, "
    "lifecycle_stage, rfm_segment, churn_risk_reason, email, first_name, country from marts.customer_traits"
)

# Columns of customer_sessions that no tie between events at the same moment can change (the landing
# page of a session whose first two events share a timestamp may differ per engine), and no engine's
# own hash (event_fingerprint).
SESSIONS_SQL = (
    "select session_id, visitor_id, customer_id, session_number, started_at, ended_at, events, page_views "
    "from marts.customer_sessions"
)
_SESSION_COLUMNS = (
    "customer_id, anonymous_id, session_number, started_at, ended_at, duration_seconds, events, page_views, "
    "landing_page_url, referrer, utm_source, utm_medium, utm_campaign, device_type, event_fingerprint"
)
# Damage the incremental customer_sessions must repair with plain INSERTs (Spark's Parquet tables take
# no UPDATE or DELETE): one visitor's sessions stored twice (its counts differ: sessionised again), and
# sessions of a visitor with no events (deleted by a tombstone).
SESSIONS_DAMAGE_SQL = (
    "insert into marts.customer_sessions select * from marts.customer_sessions "
    "where visitor_id = (select min(visitor_id) from marts.customer_sessions)",
    f"insert into marts.customer_sessions select concat('ghost-', session_id), 'anonymous:ghost', "
    f"{_SESSION_COLUMNS} from marts.customer_sessions "
    "where visitor_id = (select max(visitor_id) from marts.customer_sessions)",
)
# The repair compares every visitor's events (cdp_verify_incremental): the damage is not a change of
# customer_events. The incremental build after it takes the visitors to sessionise again from the rows
# customer_events' build wrote (its lookback reloads the latest events).
SESSIONS_REBUILD_ARGS = [
    "--select",
    "customer_sessions",
    "--exclude",
    "test_type:unit",
    "--vars",
    "{cdp_verify_incremental: true}",
]
# Damage the incremental int_golden_records must repair (plain INSERTs again): a customer that does not
# exist, and one customer stored twice.
_GOLDEN_COLUMNS = (
    "email, phone, first_name, last_name, company, city, country, crm_lifecycle_stage, source_row_count, "
    "source_row_fingerprint"
)
GOLDEN_SQL = (
    "select customer_id, email, phone, first_name, last_name, company, city, country, crm_lifecycle_stage, "
    "source_row_count from intermediate.int_golden_records"
)
GOLDEN_DAMAGE_SQL = (
    f"insert into intermediate.int_golden_records select concat('ghost-', customer_id), {_GOLDEN_COLUMNS} "
    "from intermediate.int_golden_records where customer_id = (select max(customer_id) from "
    "intermediate.int_golden_records)",
    f"insert into intermediate.int_golden_records select customer_id, {_GOLDEN_COLUMNS} "
    "from intermediate.int_golden_records where customer_id = (select min(customer_id) from "
    "intermediate.int_golden_records)",
)
EVENTS_REBUILD_ARGS = [
    "--select",
    "customer_events",
    "customer_sessions",
    "int_computed_traits",
    "int_golden_records",
    "--exclude",
    "test_type:unit",
]

# A second build in which every high-value customer leaves the segment: exercises the incremental
# models (segment_membership_history closes their stays by delete+insert) on each engine.
REBUILD_ARGS = [
    "--select",
    "high_value_customers+",
    "--exclude",
    "test_type:unit",
    "--vars",
    "{cdp_high_value_threshold: 1000000000}",
]
HISTORY_SQL = (
    "select count(*), count(exited_at), count(distinct membership_id), "
    "sum(case when segment_name = 'high_value_customers' and exited_at is null then 1 else 0 end), "
    "(select count(*) from marts.segment_members) from marts.segment_membership_history"
)


def check_history_after_rebuild(before: tuple, after: tuple) -> None:
    """Stays of the emptied segment are closed, nothing else changes, ids stay unique."""
    rows, exited, distinct, high_value_open, members = (int(v or 0) for v in before)
    assert high_value_open > 0 and exited == 0 and distinct == rows == members, before
    rows2, exited2, distinct2, high_value_open2, members2 = (int(v or 0) for v in after)
    assert (rows2, exited2, distinct2, high_value_open2) == (rows, high_value_open, rows, 0), after
    assert members2 == rows - high_value_open, after


# An erasure between two runs: every identifier of one customer goes on the erasure list, then identity
# and customer_events (incremental) run again.
ERASURE_RUN_ARGS = ["--select", "+customer_events", "--exclude", "test_type:unit"]
FORGET_SQL = [
    "insert into cdp_privacy.forgotten_identifiers "
    "(request_id, identifier_type, identifier_hash, value_hash, forgotten_at) "
    "select 'r-engine', identifier_type, md5(identifier_type || ':' || identifier_value), "
    "md5(identifier_value), current_timestamp from marts.identity_graph where customer_id = ("
    "select min(customer_id) from marts.identity_graph where identifier_type = 'email')"
]
# Events that still carry an identifier of that request.
CARRIED_SQL = """
select count(*) from marts.customer_events as e
where exists (
    select 1 from cdp_privacy.forgotten_identifiers as f
    where f.request_id = 'r-engine' and f.identifier_hash in (
        md5('user_id:' || e.user_id), md5('email:' || e.email), md5('phone:' || e.phone),
        md5('anonymous_id:' || e.anonymous_id)
    )
)
"""


def check_erasure(
    query: Callable[[str], list[tuple]], execute: Callable[[list[str]], None], run: Callable[[], object]
) -> None:
    """The forgotten customer's events keep their rows and lose the forgotten values."""
    count = "select count(*) from marts.customer_events"
    before = query(count)[0][0]
    execute(FORGET_SQL)
    assert query(CARRIED_SQL)[0][0] > 0
    run()
    assert [tuple(row) for row in query(CARRIED_SQL)] == [(0,)]
    assert query(count)[0][0] == before


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CDP_ENGINE_TESTS") == "1":
        return
    skip = pytest.mark.skip(
        reason="engine test: set CDP_ENGINE_TESTS=1 to run it (bash .ci/engines.sh, docs/engines.md)"
    )
    for item in items:
        if any(item.get_closest_marker(name) for name in ENGINE_MARKERS):
            item.add_marker(skip)


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables for a block: dbt reads the engines profile
    through env_var, and the DuckDB reference must not see a profiles directory."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def dbt(args: list[str], env: Mapping[str, str | None]) -> DbtResult:
    """dbt in-process with the given environment; fails the test with dbt's messages."""
    with environment(env):
        result = run_dbt(args)
    if not result.success:
        pytest.fail(
            f"dbt {' '.join(args[:1])} failed:\n" + "\n".join(result.failures) + f"\n{result.exception or ''}"
        )
    return result


@pytest.fixture(scope="session")
def raw_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated raw data, in DuckDB (the loaders copy it to the other engines)."""
    path = tmp_path_factory.mktemp("engines_raw") / "raw.duckdb"
    generate(path, CUSTOMERS)
    return path


@pytest.fixture(scope="session")
def duckdb_reference(raw_database: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[tuple]]:
    """The project built on DuckDB from the same raw data: what the other engines must reproduce."""
    root = tmp_path_factory.mktemp("engines_duckdb")
    database = root / "cdp.duckdb"
    shutil.copy(raw_database, database)
    started = time.perf_counter()
    with environment({"CDP_PROFILES_DIR": None, "DBT_PROFILES_DIR": None}):
        result = run_dbt(
            ["build", "--target-path", str(root / "target"), "--exclude", "test_type:unit"],
            project=PROJECT,
            database=database,
        )
    if not result.success:
        pytest.fail("dbt build on DuckDB failed:\n" + "\n".join(result.failures))
    print(f"duckdb: dbt build {time.perf_counter() - started:.0f}s")
    con = duckdb.connect(str(database), read_only=True)
    try:
        return {name: set(con.execute(sql).fetchall()) for name, sql in comparisons().items()}
    finally:
        con.close()


def comparisons() -> dict[str, str]:
    return {
        "identity_graph": GRAPH_SQL,
        "segment_members": SEGMENTS_SQL,
        "customer_traits": TRAITS_SQL,
        "customer_sessions": SESSIONS_SQL,
    }


def normalise(rows: list[tuple]) -> set[tuple]:
    """Rows as comparable tuples: Decimal and int agree, strings stay strings."""
    out = set()
    for row in rows:
        out.add(tuple(str(v) if v is not None and not isinstance(v, str | int) else v for v in row))
    return out


def assert_same(engine: str, reference: dict[str, set[tuple]], actual: dict[str, set[tuple]]) -> None:
    """Every compared table in `actual` equal to DuckDB's, with a readable sample of the differences."""
    for name in actual:
        expected, got = normalise(list(reference[name])), normalise(list(actual[name]))
        missing, extra = sorted(expected - got, key=str)[:5], sorted(got - expected, key=str)[:5]
        assert expected == got, (
            f"{name} on {engine} differs from DuckDB: {len(expected - got)} rows missing, "
            f"{len(got - expected)} extra; missing e.g. {missing}; extra e.g. {extra}"
        )
        assert expected, f"{name} is empty on DuckDB: the comparison would prove nothing"


def check_cli_and_sync(env: Mapping[str, str | None], target: str, tmp_path: Path) -> None:
    """What a user runs against a non-DuckDB target once `dbt build` has run there: the identity,
    profile and segment commands, and a segment synced to the webhook emulator with its state kept in
    that engine (a second run sends nothing)."""
    from click.testing import CliRunner

    from reverse_etl.cli import cli
    from reverse_etl.emulators.base import FaultConfig
    from reverse_etl.emulators.webhook import WebhookEmulator
    from reverse_etl.warehouse import Warehouse, target_from_profile

    with environment(env):
        location = target_from_profile(Path(str(env["CDP_PROFILES_DIR"])), target)
        assert location is not None and location.type == target
        runner = CliRunner()

        def cdp(*args: str) -> str:
            result = runner.invoke(cli, ["--target", target, *args], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return result.output

        with Warehouse(location, read_only=True) as wh:
            email = wh.scalar(
                "select identifier_value from marts.identity_graph where identifier_type = 'email' "
                "order by identifier_value limit 1"
            )
            # The largest segment now (an earlier test in the module may have emptied another).
            segment = wh.scalar(
                "select segment_name from marts.segment_members where not coalesce(is_holdout, false) "
                "group by segment_name order by count(*) desc, segment_name limit 1"
            )
            members = {
                r["customer_id"]
                for r in wh.query(
                    "select customer_id from marts.segment_members "
                    "where segment_name = ? and not coalesce(is_holdout, false)",
                    [segment],
                )
            }
        assert email and members
        assert "cluster" in cdp("identity", "stats").lower()
        assert segment in cdp("segment", "list")
        assert email in cdp("profile", "show", email, "--show-pii")
        assert segment in cdp("segment", "preview", segment)

        emulator = WebhookEmulator(FaultConfig())
        os.environ["CDP_ENGINE_SYNC_SECRET"] = emulator.secret
        emulator.start()
        try:
            syncs = tmp_path / "syncs"
            syncs.mkdir(parents=True, exist_ok=True)
            sync_file = syncs / f"hv_{target}.yml"
            sync_file.write_text(
                yaml.safe_dump(
                    {
                        "source": {"segment": segment},
                        "destination": {
                            "type": "webhook",
                            "url": emulator.url,
                            "secret": "CDP_ENGINE_SYNC_SECRET",
                        },
                        "mode": "mirror",
                        "primary_key": "customer_id",
                        "mapping": {"email": "email", "first_name": "first_name"},
                        "batch_size": 25,
                    }
                )
            )
            os.environ["CDP_SYNCS_DIR"] = str(syncs)
            # `cdp run`: dbt builds the segment's mart on this engine, then the sync runs from it.
            out = cdp("run", "--sync", f"hv_{target}", "--select", "segment_members")
            assert f"hv_{target}" in out
            assert set(emulator.records) == {str(k) for k in members}
            # `cdp sync run`: the state kept in this engine says nothing changed.
            cdp("sync", "run", f"hv_{target}")
            assert "hv_" + target in cdp("sync", "status")
            with Warehouse(location, read_only=True) as wh:
                runs = wh.query(
                    "select status, added, changed, removed from cdp_sync.sync_runs where sync_name = ? "
                    "order by started_at",
                    [f"hv_{target}"],
                )
            assert [r["status"] for r in runs] == ["success", "success"], runs
            assert (runs[1]["added"], runs[1]["changed"], runs[1]["removed"]) == (0, 0, 0), runs
        finally:
            emulator.stop()
            os.environ.pop("CDP_ENGINE_SYNC_SECRET", None)
            os.environ.pop("CDP_SYNCS_DIR", None)
