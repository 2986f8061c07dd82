"""`cdp run`, `cdp schedule`, `cdp check` and the dbt exposures, against real DuckDB warehouses, real dbt
builds and loopback HTTP receivers (the webhook emulator, and a plain JSON receiver for alerts)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from reverse_etl.cli import cli
from reverse_etl.dbt import target_path
from reverse_etl.emulators.base import FaultConfig
from reverse_etl.emulators.webhook import WebhookEmulator
from reverse_etl.orchestrate import Lineage, blocked_by, load_json
from reverse_etl.scheduler import Scheduler, due_times
from reverse_etl.sync.config import parse_sync
from reverse_etl.sync.engine import run_sync
from reverse_etl.sync.lock import SyncLock
from reverse_etl.warehouse import Warehouse
from tests.conftest import PROJECT
from tests.rawdata import RawData

SECRET_ENV = "CDP_TEST_ORCH_SECRET"
ALERT_ENV = "CDP_TEST_ORCH_ALERT_URL"


# -- helpers ---------------------------------------------------------------------------------------


class AlertReceiver:
    """A plain JSON webhook on loopback that keeps what it was sent."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def messages(self) -> list[str]:
        return [a for body in self.received for a in body.get("alerts", [])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeClock:
    """The scheduler's clock, moved by the test (each of the scheduler's sleeps moves it ``step``)."""

    def __init__(self, start: datetime, step: timedelta = timedelta(minutes=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, _seconds: float) -> None:
        time.sleep(0.05)  # let worker threads make progress in real time
        self.now += self.step


def people_table(wh: Warehouse, n: int = 60) -> None:
    wh.execute(
        f"""create or replace table main.people as
            select i as id, 'user' || i || '@example.com' as email, i % 10 <> 0 as consent_email_marketing
            from range({n}) t(i)"""
    )


def people_sync_data(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "source": {"table": "main.people"},
        "destination": {"type": "webhook", "url": url, "secret": SECRET_ENV},
        "mode": "mirror",
        "primary_key": "id",
        "mapping": {"email": "email"},
        "consent": ["email_marketing"],
        "batch_size": 10,
        "retry": {"max_attempts": 2, "initial_delay": 0.01, "max_delay": 0.05},
        **extra,
    }


def write_sync(directory: Path, name: str, data: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def alerts(monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertReceiver]:
    receiver = AlertReceiver()
    monkeypatch.setenv(ALERT_ENV, receiver.url)
    try:
        yield receiver
    finally:
        receiver.close()


def _emulator(monkeypatch: pytest.MonkeyPatch, faults: FaultConfig | None = None) -> WebhookEmulator:
    em = WebhookEmulator(faults or FaultConfig())
    monkeypatch.setenv(SECRET_ENV, em.secret)
    em.start()
    return em


# -- scheduler -------------------------------------------------------------------------------------

SCHEDULED = {"schedule": "* * * * *", "alerts": {"on_failure": True, "webhook_url_env": ALERT_ENV}}


def test_due_times_are_the_cron_times_in_the_window() -> None:
    start = datetime(2026, 5, 1, 12, 0, 30)
    assert due_times("*/15 * * * *", start, start + timedelta(hours=1)) == [
        datetime(2026, 5, 1, 12, 15),
        datetime(2026, 5, 1, 12, 30),
        datetime(2026, 5, 1, 12, 45),
        datetime(2026, 5, 1, 13, 0),
    ]
    assert due_times("* * * * *", start, start + timedelta(days=30), limit=5) == [
        datetime(2026, 5, 1, 12, m) for m in range(1, 6)
    ]


def test_scheduler_skips_a_run_whose_lock_is_held_then_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alerts: AlertReceiver
) -> None:
    em = _emulator(monkeypatch)
    try:
        database = tmp_path / "cdp.duckdb"
        with Warehouse(database) as wh:
            people_table(wh)
        config = parse_sync(people_sync_data(em.url, **SCHEDULED), tmp_path / "syncs" / "people.yml")
        clock = FakeClock(datetime(2026, 5, 1, 12, 0, 30))
        lines: list[str] = []
        with SyncLock(database, "people"):  # a run by hand holds the sync
            events = Scheduler(tmp_path, database, [config], clock=clock, say=lines.append).serve(once=True)
        assert [e.kind for e in events] == ["due", "skipped"]
        assert "lock held" in events[1].detail and "already running" in events[1].detail
        assert any("skipped" in line for line in lines)
        assert em.records == {}
        events = Scheduler(tmp_path, database, [config], clock=clock).serve(once=True)
        assert [e.kind for e in events] == ["due", "started", "finished"]
        assert len(em.records) == 54
        assert alerts.messages() == []
    finally:
        em.stop()


def test_scheduler_never_overlaps_a_sync_and_alerts_the_runs_it_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alerts: AlertReceiver
) -> None:
    # Every request stalls 0.4 s: the first run spans several of the scheduler's (fake) minutes.
    em = _emulator(monkeypatch, FaultConfig(timeout_every=1, timeout_seconds=0.4))
    try:
        database = tmp_path / "cdp.duckdb"
        with Warehouse(database) as wh:
            people_table(wh, 40)
        data = people_sync_data(em.url, **SCHEDULED)
        data["destination"]["max_concurrency"] = 1
        config = parse_sync(data, tmp_path / "syncs" / "people.yml")
        clock = FakeClock(datetime(2026, 5, 1, 12, 0, 30))
        scheduler = Scheduler(tmp_path, database, [config], clock=clock, tick=1, say=lambda _: None)
        events = scheduler.serve(until=datetime(2026, 5, 1, 12, 2, 50), sleep=clock.sleep)
        kinds = [e.kind for e in events]
        assert kinds.count("started") == 1, kinds  # never a second run while the first is going
        skipped = [e for e in events if e.kind == "skipped"]
        assert skipped and all("still running" in e.detail for e in skipped)
        assert [e.scheduled_for for e in skipped] == [
            datetime(2026, 5, 1, 12, 1),
            datetime(2026, 5, 1, 12, 2),
        ]
        missed = alerts.messages()
        assert len(missed) == 2 and all("missed" in m and "still running" in m for m in missed)
        assert alerts.received[0]["sync"] == "people" and alerts.received[0]["run"]["status"] == "missed"
        assert kinds[-1] == "finished" and len(em.records) == 36  # the run was allowed to finish
    finally:
        em.stop()


def test_scheduler_alerts_runs_missed_while_down_and_catches_up_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alerts: AlertReceiver
) -> None:
    em = _emulator(monkeypatch)
    try:
        database = tmp_path / "cdp.duckdb"
        config = parse_sync(people_sync_data(em.url, **SCHEDULED), tmp_path / "syncs" / "people.yml")
        woke = datetime(2026, 5, 1, 12, 0, 30)
        with Warehouse(database) as wh:
            people_table(wh)
            run_sync(config, wh)
            # The machine slept: its last run was 5 minutes 20 seconds before the scheduler woke up.
            wh.execute(
                "update cdp_sync.sync_runs set started_at = ?", [woke - timedelta(minutes=5, seconds=20)]
            )
            wh.execute("insert into main.people values (1000, 'new@example.com', true)")
        clock = FakeClock(woke)
        events = Scheduler(tmp_path, database, [config], clock=clock, say=lambda _: None).serve(once=True)
        assert [e.kind for e in events] == ["missed", "due", "started", "finished"]
        assert "4 scheduled run(s) missed" in events[0].detail
        (message,) = alerts.messages()
        assert "4 scheduled run(s) missed" in message and "scheduler down or machine asleep" in message
        assert "1000" in em.records  # one late run sent what changed
        # Started again at the moment of that run: nothing was missed, nothing runs.
        with Warehouse(database) as wh:
            latest = wh.scalar("select max(started_at) from cdp_sync.sync_runs")
        again = Scheduler(tmp_path, database, [config], clock=FakeClock(latest), say=lambda _: None)
        assert again.serve(once=True) == []
    finally:
        em.stop()


def test_scheduler_jumping_clock_in_the_loop_counts_missed_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alerts: AlertReceiver
) -> None:
    em = _emulator(monkeypatch)
    try:
        database = tmp_path / "cdp.duckdb"
        with Warehouse(database) as wh:
            people_table(wh, 20)
        config = parse_sync(people_sync_data(em.url, **SCHEDULED), tmp_path / "syncs" / "people.yml")
        clock = FakeClock(datetime(2026, 5, 1, 12, 0, 30), step=timedelta(minutes=10))
        scheduler = Scheduler(tmp_path, database, [config], clock=clock, tick=1, say=lambda _: None)
        scheduler.start()
        scheduler.launch()  # the first run: the sync never ran
        scheduler.drain(10)
        clock.now += timedelta(minutes=10)  # asleep for ten minutes
        scheduler.step()
        scheduler.drain(10)
        missed = [e for e in scheduler.events if e.kind == "missed"]
        assert len(missed) == 1 and "9 scheduled run(s) missed" in missed[0].detail
        assert [e.kind for e in scheduler.events].count("finished") == 2
        assert len(alerts.messages()) == 1
    finally:
        em.stop()


def test_sigterm_stops_the_scheduler_and_a_long_run_stops_safely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    em = _emulator(monkeypatch, FaultConfig(timeout_every=1, timeout_seconds=0.3))
    try:
        database = tmp_path / "cdp.duckdb"
        with Warehouse(database) as wh:
            people_table(wh, 100)  # 90 with consent: 9 requests of 0.3 s, one at a time
        data = people_sync_data(em.url, schedule="0 0 1 1 *")
        data["destination"]["max_concurrency"] = 1
        config = parse_sync(data, tmp_path / "syncs" / "people.yml")
        scheduler = Scheduler(tmp_path, database, [config], tick=0.05, grace=0.2, say=lambda _: None)
        scheduler.install_signal_handlers()
        timer = threading.Timer(0.8, os.kill, args=(os.getpid(), signal.SIGTERM))
        timer.start()
        events = scheduler.serve()
        timer.join()
        kinds = [e.kind for e in events]
        assert kinds == ["due", "started", "abandoned", "finished"], kinds
        assert 0 < len(em.records) < 90
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
        # Nothing acknowledged is lost or resent twice: the next run sends exactly the rest.
        em.faults.timeout_every = 0
        with Warehouse(database) as wh:
            run_sync(config, wh)
        assert len(em.records) == 90 and em.duplicates() == 0
    finally:
        em.stop()


def test_schedule_command_once_runs_due_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    em = _emulator(monkeypatch)
    try:
        database = tmp_path / "cdp.duckdb"
        with Warehouse(database) as wh:
            people_table(wh, 20)
        syncs = tmp_path / "syncs"
        write_sync(syncs, "people", people_sync_data(em.url, schedule="0 * * * *"))
        write_sync(syncs, "manual", people_sync_data(em.url))
        env = {"CDP_DUCKDB_PATH": str(database), "CDP_SYNCS_DIR": str(syncs)}
        result = CliRunner().invoke(cli, ["schedule", "--once"], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "manual: no schedule" in result.output
        assert "people: started" in result.output and "people: finished" in result.output
        assert "scheduler stopped: 1 run(s), 0 failed" in result.output
        assert len(em.records) == 18
        bounded = CliRunner().invoke(cli, ["schedule", "--until", "0.3", "--tick", "0.1"], env=env)
        assert bounded.exit_code == 0, bounded.output
        assert "scheduler stopped: 0 run(s)" in bounded.output
    finally:
        em.stop()


# -- cdp run ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken_build(tmp_path_factory: pytest.TempPathFactory, dbt_target: Path) -> dict[str, Any]:
    """`cdp run` on a warehouse whose CRM contacts table is gone: its staging model fails, everything
    built on identity is skipped, a sync over a plain table still runs."""
    root = tmp_path_factory.mktemp("broken")
    database = root / "cdp.duckdb"
    raw = RawData(database)
    raw.identify(0, anonymous_id="dev-1", user_id="u-1", email="one@example.org")
    raw.execute("drop table crm.contacts")
    with Warehouse(database) as wh:
        people_table(wh, 20)
    em = WebhookEmulator()
    em.start()
    syncs = root / "syncs"
    write_sync(
        syncs,
        "segment_audience",
        {
            "source": {"segment": "high_value_customers"},
            "destination": {"type": "webhook", "url": em.url, "secret": SECRET_ENV},
            "mode": "audience",
            "primary_key": "customer_id",
            "mapping": {"email": "email"},
        },
    )
    write_sync(
        syncs,
        "profiles_table",
        {
            "source": {"table": "marts.customer_profiles"},
            "destination": {"type": "webhook", "url": em.url, "secret": SECRET_ENV},
            "mode": "upsert",
            "primary_key": "customer_id",
            "mapping": {"email": "email"},
        },
    )
    write_sync(syncs, "people", people_sync_data(em.url))
    env = {"CDP_DUCKDB_PATH": str(database), "CDP_SYNCS_DIR": str(syncs), SECRET_ENV: em.secret}
    try:
        result = CliRunner().invoke(
            cli,
            ["run", "--target-path", str(dbt_target), "--exclude", "test_type:unit"],
            env=env,
            catch_exceptions=False,
        )
        records = dict(em.records)
    finally:
        em.stop()
    return {"result": result, "records": records, "target": dbt_target, "database": database}


def test_run_skips_syncs_whose_model_failed_and_runs_the_rest(broken_build: dict[str, Any]) -> None:
    result = broken_build["result"]
    assert result.exit_code == 2, result.output  # the build failed
    out = result.output
    assert "dbt build failed" in out
    for name in ("segment_audience", "profiles_table"):
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert "skipped" in line and "model.cdp.stg_crm__contacts error" in line, line
    people = next(line for line in out.splitlines() if line.startswith("people "))
    assert "success" in people
    assert len(broken_build["records"]) == 18  # only the plain table's sync sent anything
    assert "1 of 3 sync(s) ran" in out


def test_blocked_by_reads_the_lineage_from_run_results(broken_build: dict[str, Any], tmp_path: Path) -> None:
    target = broken_build["target"]
    lineage = Lineage(load_json(target / "manifest.json"))
    results = {r["unique_id"]: r for r in load_json(target / "run_results.json")["results"]}
    segment = parse_sync(
        {
            "source": {"segment": "high_value_customers"},
            "destination": {"type": "files", "path": str(tmp_path)},
            "mode": "audience",
            "primary_key": "customer_id",
            "mapping": {"email": "email"},
        },
        tmp_path / "a.yml",
    )
    assert "stg_crm__contacts" in (blocked_by(segment, lineage, results) or "")
    # Only what is upstream counts: a model built from the shop alone would not be blocked.
    shop_only = {uid: r for uid, r in results.items() if "crm" not in uid and "contacts" not in uid}
    assert blocked_by(segment, lineage, shop_only) is None or "stg_crm" not in (
        blocked_by(segment, lineage, shop_only) or ""
    )
    assert target_path(PROJECT, ["--target-path", "x"]) == PROJECT / "x"
    assert target_path(PROJECT, [f"--target-path={target}"]) == target


# -- cdp check and exposures -------------------------------------------------------------------------


@pytest.fixture
def check_env(tmp_path: Path, broken_build: dict[str, Any]) -> dict[str, Any]:
    """A project holding the real dbt_project.yml, a warehouse with a built customer_profiles, a
    manifest from the build above, and one sync per kind of source."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT / "dbt_project.yml", project / "dbt_project.yml")
    database = tmp_path / "cdp.duckdb"
    with Warehouse(database) as wh:
        wh.execute("create schema marts")
        wh.execute(
            "create table marts.customer_profiles as select 'cus_1' as customer_id, 'a@example.org' as email, "
            "'Ann' as first_name, true as consent_email_marketing, true as consent_ads_personalization, "
            "true as consent_ad_user_data"
        )
    syncs = project / "syncs"
    write_sync(
        syncs,
        "profiles",
        {
            "description": "Profiles to the CRM.",
            "source": {"model": "customer_profiles"},
            "destination": {"type": "files", "path": str(tmp_path / "out")},
            "mode": "mirror",
            "primary_key": "customer_id",
            "mapping": {"email": "email", "name": {"template": "{first_name}!"}},
            "consent": ["email_marketing"],
            "schedule": "0 6 * * *",
        },
    )
    write_sync(
        syncs,
        "ads",
        {
            "source": {"model": "customer_profiles"},
            "destination": {"type": "meta", "ad_account_id": "1", "access_token": "T_META"},
            "mode": "audience",
            "primary_key": "customer_id",
            "mapping": {"email": "email"},
        },
    )
    manifest = broken_build["target"] / "manifest.json"
    env = {"CDP_DUCKDB_PATH": str(database), "CDP_PROJECT_DIR": str(project), "CDP_SYNCS_DIR": str(syncs)}
    return {"project": project, "database": database, "syncs": syncs, "manifest": manifest, "env": env}


def _check(env: dict[str, Any], *extra: str) -> Any:
    return CliRunner().invoke(cli, ["check", "--manifest", str(env["manifest"]), *extra], env=env["env"])


def test_check_passes_then_fails_when_a_synced_column_is_dropped(check_env: dict[str, Any]) -> None:
    ok = _check(check_env, "--write-exposures")
    assert ok.exit_code == 0, ok.output
    assert "2 sync(s) checked" in ok.output and "warehouse" in ok.output
    with Warehouse(check_env["database"]) as wh:
        wh.execute("alter table marts.customer_profiles drop column first_name")
        wh.execute("alter table marts.customer_profiles drop column consent_ad_user_data")
    broken = _check(check_env)
    assert broken.exit_code == 1
    out = broken.output
    assert "profiles.yml: mapping.name: column 'first_name' is not in marts.customer_profiles" in out
    assert "Fix: restore column 'first_name' in the source, or map 'name' to another column" in out
    # The Meta sync names no consent, but its destination needs ad_user_data.
    assert (
        "ads.yml: consent (ad_user_data): column 'consent_ad_user_data' is not in marts.customer_profiles"
        in out
    )
    assert "destination meta needs consent for ad_user_data" in out


def test_check_fails_when_a_synced_model_is_gone(check_env: dict[str, Any]) -> None:
    write_sync(
        check_env["syncs"],
        "typo",
        {
            "source": {"model": "customer_profile"},
            "destination": {"type": "files", "path": "out"},
            "mode": "upsert",
            "primary_key": "customer_id",
            "mapping": {"email": "email"},
        },
    )
    write_sync(
        check_env["syncs"],
        "bad_segment",
        {
            "source": {"segment": "high_value_customer"},
            "destination": {"type": "files", "path": "out"},
            "mode": "audience",
            "primary_key": "customer_id",
            "mapping": {"email": "email"},
        },
    )
    (check_env["syncs"] / "invalid.yml").write_text("source: {model: x}\nmode: mirorr\n")
    result = _check(check_env)
    assert result.exit_code == 1
    out = result.output
    assert (
        "typo.yml: source.model: no dbt model named 'customer_profile'; did you mean 'customer_profiles'?"
        in out
    )
    assert "bad_segment.yml: source.segment: no segment named 'high_value_customer'" in out
    assert "invalid.yml" in out


def test_exposures_describe_each_sync(check_env: dict[str, Any]) -> None:
    written = _check(check_env, "--write-exposures", "--owner", "Data Team <data@example.org>")
    assert written.exit_code == 0, written.output
    path = check_env["project"] / "models" / "exposures" / "_syncs__exposures.yml"
    doc = yaml.safe_load(path.read_text())
    by_name = {e["name"]: e for e in doc["exposures"]}
    assert set(by_name) == {"sync_ads", "sync_profiles"}
    profiles = by_name["sync_profiles"]
    assert profiles["type"] == "application"
    assert profiles["depends_on"] == ["ref('customer_profiles')"]
    assert profiles["owner"] == {"name": "Data Team", "email": "data@example.org"}
    assert profiles["meta"]["schedule"] == "0 6 * * *" and profiles["description"] == "Profiles to the CRM."
    # Up to date: check passes; a new sync makes it stale and check says how to fix it.
    assert _check(check_env, "--owner", "Data Team <data@example.org>").exit_code == 0
    write_sync(
        check_env["syncs"],
        "more",
        {
            "source": {"model": "customer_profiles"},
            "destination": {"type": "files", "path": "out"},
            "mode": "upsert",
            "primary_key": "customer_id",
            "mapping": {"email": "email"},
        },
    )
    stale = _check(check_env, "--owner", "Data Team <data@example.org>")
    assert stale.exit_code == 1 and "cdp check --write-exposures" in stale.output


def test_project_exposures_are_current_and_parsed_by_dbt(broken_build: dict[str, Any]) -> None:
    """The repository's exposures file matches syncs/, and dbt parsed it (every build here did)."""
    from reverse_etl.checks import run_checks

    manifest = load_json(broken_build["target"] / "manifest.json")
    report = run_checks(PROJECT, None, PROJECT / "syncs", manifest)
    assert [str(p) for p in report.errors] == []
    exposures = manifest.get("exposures", {})
    assert "exposure.cdp.sync_high_value_customers_webhook" in exposures
    assert exposures["exposure.cdp.sync_high_value_customers_webhook"]["depends_on"]["nodes"] == [
        "model.cdp.segment_members",
        "model.cdp.high_value_customers",
    ]


@pytest.mark.slow
def test_written_exposures_parse_and_a_deleted_model_is_named(tmp_path: Path) -> None:
    """In a copy of the project: dbt parses the written exposures; deleting the model a sync reads makes
    `cdp check` name the sync even though dbt can no longer parse the exposures file."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT / "dbt_project.yml", project / "dbt_project.yml")
    for folder in ("models", "macros", "seeds", "tests/dbt"):
        shutil.copytree(PROJECT / folder, project / folder)
    (project / "models" / "exposures" / "_syncs__exposures.yml").unlink(missing_ok=True)
    extra = project / "models" / "marts" / "extra_export.sql"
    extra.write_text("select 'cus_1' as customer_id, 'a@example.org' as email\n")
    syncs = project / "syncs"
    write_sync(
        syncs,
        "extra",
        {
            "source": {"model": "extra_export"},
            "destination": {"type": "files", "path": "out"},
            "mode": "upsert",
            "primary_key": "customer_id",
            "mapping": {"email": "email"},
        },
    )
    target = tmp_path / "target"
    env = {
        "CDP_PROJECT_DIR": str(project),
        "CDP_SYNCS_DIR": str(syncs),
        "CDP_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
    }
    runner = CliRunner()
    written = runner.invoke(cli, ["check", "--write-exposures", "--target-path", str(target)], env=env)
    assert written.exit_code == 0, written.output
    parsed = runner.invoke(cli, ["check", "--target-path", str(target)], env=env)  # parses the new file
    assert parsed.exit_code == 0, parsed.output
    assert "exposure.cdp.sync_extra" in load_json(target / "manifest.json")["exposures"]
    extra.unlink()
    gone = runner.invoke(cli, ["check", "--target-path", str(target)], env=env)
    assert gone.exit_code == 1
    assert "extra.yml: source.model: no dbt model named 'extra_export'" in gone.output
    assert "dbt cannot parse _syncs__exposures.yml" in gone.output
