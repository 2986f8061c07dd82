"""`cdp sync ...` through click's CliRunner against a temp warehouse and the webhook receiver."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reverse_etl.cli import cli
from reverse_etl.emulators.webhook import WebhookEmulator
from reverse_etl.warehouse import Warehouse

from .helpers import create_people, expected_state, sync_dict, write_sync


@pytest.fixture
def project(tmp_path: Path, emulator: WebhookEmulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "warehouse" / "cdp.duckdb"
    with Warehouse(db) as wh:
        create_people(wh, 100)
    syncs = tmp_path / "syncs"
    write_sync(syncs, "people", sync_dict(emulator.url, schedule="0 * * * *"))
    write_sync(syncs, "people_upsert", sync_dict(emulator.url, mode="upsert"))
    monkeypatch.setenv("CDP_SYNCS_DIR", str(syncs))
    return db


def cdp(db: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(
        cli, ["--database", str(db), "sync", *args], input=input, catch_exceptions=False
    )


def test_list_plan_run_status_history(project: Path, emulator: WebhookEmulator) -> None:
    listed = cdp(project, "list")
    assert listed.exit_code == 0, listed.output
    assert "people" in listed.output and "table: main.people" in listed.output and "next" in listed.output

    plan = cdp(project, "plan", "people")
    assert plan.exit_code == 0, plan.output
    assert "creates: 90  updates: 0  deletes: 0  invalid: 10" in plan.output
    assert "webhook-signature: v1," in plan.output and f"POST {emulator.url}" in plan.output
    assert '"type": "cdp.sync.upsert"' in plan.output and "more records in this request" in plan.output
    assert emulator.request_count == 0

    run = cdp(project, "run", "people", "--no-progress")
    assert run.exit_code == 0, run.output
    assert "sync people: success" in run.output and "90 added" in run.output
    with Warehouse(project, read_only=True) as wh:
        assert emulator.records == expected_state(wh)

    again = cdp(project, "run", "people")
    assert "0 added, 0 changed, 0 removed" in again.output

    status = cdp(project, "status")
    assert status.exit_code == 0
    line = next(x for x in status.output.splitlines() if x.startswith("people "))
    assert "success" in line and "+0" in line
    assert "never run" in next(x for x in status.output.splitlines() if x.startswith("people_upsert"))

    history = cdp(project, "history", "people")
    assert history.output.count("success") == 2


def test_run_all_retry_reset_and_failures(project: Path, emulator: WebhookEmulator) -> None:
    emulator.record_reject_values = ("user7@example.com",)
    result = cdp(project, "run", "--all", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "sync people: partial" in result.output and "sync people_upsert: partial" in result.output
    assert "retried on the next run" in result.output

    detail = cdp(project, "history", "people", "--records")
    assert "7" in detail.output and "value not accepted by the receiver" in detail.output

    emulator.record_reject_values = ()
    retry = cdp(project, "retry", "people")
    assert "sync people: success" in retry.output and "1 added" in retry.output

    reset = cdp(project, "reset", "people", input="n\n")
    assert reset.exit_code == 1  # aborted at the prompt
    reset = cdp(project, "reset", "people", "--yes")
    assert "full resync (90 records stay on the ownership ledger)" in reset.output
    assert "90 changed" in cdp(project, "run", "people").output

    emulator.gone = True
    with Warehouse(project) as wh:
        wh.execute("update main.people set score = -1")
    failed = cdp(project, "run", "people")
    assert failed.exit_code == 1 and "HTTP 410" in failed.output

    usage = cdp(project, "run")
    assert usage.exit_code == 2 and "give sync name(s) or --all" in usage.output


def test_invalid_and_unknown_syncs_are_reported(
    project: Path, tmp_path: Path, emulator: WebhookEmulator
) -> None:
    write_sync(tmp_path / "syncs", "broken", sync_dict(emulator.url, mode="mirorr"))
    listed = cdp(project, "list")
    assert listed.exit_code == 1
    assert (
        "broken.yml: mode: 'mirorr' is not one of" in listed.output
        and "did you mean 'mirror'?" in listed.output
    )
    missing = cdp(project, "plan", "peeple")
    assert (
        missing.exit_code == 1
        and "no sync named 'peeple'" in missing.output
        and "did you mean 'people'?" in missing.output
    )
    bad = cdp(project, "run", "broken")
    assert bad.exit_code == 1 and "mirorr" in bad.output
