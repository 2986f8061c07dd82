"""Secrets never leak: a webhook signing secret and an alert URL, both read from the environment, must
not appear in the run tables, in anything printed or logged, or in any file the runs leave behind,
whether the run succeeds, meets a 5xx, or is refused by the receiver."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reverse_etl.cli import cli
from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route
from reverse_etl.emulators.webhook import WebhookEmulator
from reverse_etl.sync.engine import run_sync
from reverse_etl.warehouse import Warehouse
from tests.sync.helpers import SECRET_ENV, create_people, people_sync, sync_dict, write_sync

# Distinctive values: nothing else in a run could contain them by chance.
SECRET_KEY = b"CANARYkey-7f3a9c21-do-not-leak-0042"
SECRET = "whsec_" + base64.b64encode(SECRET_KEY).decode()
ALERT_ENV = "CDP_TEST_ALERT_URL"
ALERT_TOKEN = "CANARYurl-5b8e1d77-hook-token"
DEAD_ALERT_ENV = "CDP_TEST_DEAD_ALERT_URL"

NEEDLES = (SECRET, SECRET[len("whsec_") :], SECRET_KEY.decode(), ALERT_TOKEN)


class AlertReceiver(Emulator):
    """Accepts alerts on a path that carries the secret token, as real hook URLs do."""

    name = "alerts"

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[Any] = []

    @route("POST", f"/hooks/{ALERT_TOKEN}")
    def alert(self, request: Request) -> Response:
        self.posts.append(request.json())
        return Response(200, {"ok": True})


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[WebhookEmulator, AlertReceiver]]:
    hook = WebhookEmulator(FaultConfig(), secret=SECRET)
    alerts = AlertReceiver()
    hook.start()
    alerts.start()
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv(ALERT_ENV, f"{alerts.base_url}/hooks/{ALERT_TOKEN}")
    # Nothing listens on port 9 of loopback: the alert fails to send, and says so.
    monkeypatch.setenv(DEAD_ALERT_ENV, f"http://127.0.0.1:9/hooks/{ALERT_TOKEN}?token={ALERT_TOKEN}")
    try:
        yield hook, alerts
    finally:
        hook.stop()
        alerts.stop()


def leaks(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


def scan_run_tables(wh: Warehouse) -> dict[str, list[str]]:
    """Every cell of every table in cdp_sync, as text."""
    found: dict[str, list[str]] = {}
    tables = wh.query("select table_name from information_schema.tables where table_schema = 'cdp_sync'")
    assert tables, "the runs wrote no cdp_sync tables: the scan would prove nothing"
    for t in tables:
        for row in wh.query(f'select * from "cdp_sync"."{t["table_name"]}"'):
            for column, value in row.items():
                hit = leaks(str(value))
                if hit:
                    found.setdefault(f"cdp_sync.{t['table_name']}.{column}", []).extend(hit)
    return found


def scan_files(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hit = [n for n in NEEDLES if n.encode() in data]
            if hit:
                found[str(path)] = hit
    return found


def test_secrets_never_appear_in_run_tables_output_logs_or_files(
    tmp_path: Path,
    receivers: tuple[WebhookEmulator, AlertReceiver],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook, alert_receiver = receivers
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "warehouse" / "cdp.duckdb"
    alerts = {"on_failure": True, "rejection_rate": 0.0, "webhook_url_env": ALERT_ENV}
    dead_alerts = {"on_failure": True, "rejection_rate": 0.0, "webhook_url_env": DEAD_ALERT_ENV}
    statuses: list[str] = []
    with Warehouse(db) as wh:
        create_people(wh, 60)
        config = people_sync(hook.url, tmp_path, alerts=alerts)
        # 1. a clean run
        statuses.append(run_sync(config, wh).status)
        # 2. every request a 5xx: retries exhausted, records failed, an alert sent
        hook.faults = FaultConfig(error_5xx_every=1)
        wh.execute("update main.people set score = score + 1")
        statuses.append(run_sync(config, wh).status)
        # 3. the receiver refuses authentication: a terminal error, alert to a dead URL
        hook.faults = FaultConfig(auth_failure=True)
        wh.execute("update main.people set score = score + 1")
        statuses.append(run_sync(people_sync(hook.url, tmp_path, alerts=dead_alerts), wh).status)
        # 4. the wrong secret in the environment: the receiver's signature check refuses it
        hook.faults = FaultConfig()
        wrong = "whsec_" + base64.b64encode(b"another-key-0123456789abcdef").decode()
        monkeypatch.setenv(SECRET_ENV, wrong)
        statuses.append(run_sync(config, wh).status)
        monkeypatch.setenv(SECRET_ENV, SECRET)
        run_tables = scan_run_tables(wh)

    # 5. the same through the CLI, which prints summaries and errors
    syncs = tmp_path / "syncs_cli"
    write_sync(syncs, "people_cli", sync_dict(hook.url, alerts=alerts))
    monkeypatch.setenv("CDP_SYNCS_DIR", str(syncs))
    hook.faults = FaultConfig(auth_failure=True)
    failed = CliRunner().invoke(cli, ["--database", str(db), "sync", "run", "people_cli"])
    hook.faults = FaultConfig()
    ok = CliRunner().invoke(cli, ["--database", str(db), "sync", "run", "people_cli"])
    # 6. a secret that is not a valid whsec_ value must not be echoed in the config error
    monkeypatch.setenv(SECRET_ENV, SECRET_KEY.decode())
    malformed = CliRunner().invoke(cli, ["--database", str(db), "sync", "run", "people_cli"])

    # The runs did what the scan relies on: success, failures, errors, alerts.
    assert statuses[0] == "success" and all(s != "success" for s in statuses[1:]), statuses
    assert alert_receiver.posts, "no alert reached the receiver: the alert path went untested"
    assert hook.rejected_signatures > 0, "the wrong secret never reached the receiver"
    assert ok.exit_code == 0, ok.output
    assert failed.output.strip() and malformed.exit_code != 0 and malformed.output.strip()

    captured = capsys.readouterr()
    assert run_tables == {}
    assert leaks(failed.output + ok.output + malformed.output) == []
    assert leaks(captured.out + captured.err) == []
    assert leaks(caplog.text) == []
    assert [r.getMessage() for r in caplog.records if leaks(r.getMessage())] == []
    assert scan_files(tmp_path) == {}
