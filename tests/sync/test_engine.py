"""The engine end to end: warehouse diff, delivery over loopback HTTP to the signed webhook receiver."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route
from reverse_etl.emulators.webhook import WebhookEmulator
from reverse_etl.sync import state
from reverse_etl.sync.engine import plan_sync, reset_sync, run_sync
from reverse_etl.sync.lock import SyncLock, SyncLocked, lock_path
from reverse_etl.warehouse import Warehouse

from .helpers import SECRET_ENV, create_people, expected_state, people_sync


def records_of(wh: Warehouse, run_id: str, status: str | None = None) -> list[dict[str, Any]]:
    sql = (
        "select * from cdp_sync.sync_records where run_id = ?"
        + (" and status = ?" if status else "")
        + " order by seq"
    )
    return wh.query(sql, [run_id, status] if status else [run_id])


def state_rows(wh: Warehouse, name: str = "people") -> dict[str, dict[str, Any]]:
    """State of the records sent at least once (never-sent invalid records only remember their reason)."""
    return {
        r["record_key"]: r
        for r in wh.query(
            "select * from cdp_sync.sync_state where sync_name = ? and status <> 'invalid'", [name]
        )
    }


# -- diff over successive runs ---------------------------------------------------------------------


def test_successive_runs_send_only_what_changed(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    config = people_sync(emulator.url, tmp_path)
    first = run_sync(config, wh)
    assert (first.status, first.added, first.changed, first.removed) == ("success", 270, 0, 0)
    assert first.invalid == 30  # ids divisible by 10 have no consent
    assert first.requests == 6  # 270 records in batches of 50
    assert emulator.records == expected_state(wh)

    wh.execute("update main.people set first_name = 'Changed' where id in (1, 2, 3)")
    wh.execute("update main.people set score = score + 1 where id = 4")
    wh.execute("delete from main.people where id in (5, 6)")
    wh.execute("insert into main.people values (1000, 'new@example.com', 'New', 'Person', 1, true)")
    second = run_sync(config, wh)
    assert (second.added, second.changed, second.removed, second.invalid) == (1, 4, 2, 30)
    assert emulator.records == expected_state(wh)
    sent = {r["record_key"]: r["operation"] for r in records_of(wh, second.run_id, "synced")}
    assert sent == {
        "1000": "upsert",
        "1": "upsert",
        "2": "upsert",
        "3": "upsert",
        "4": "upsert",
        "5": "remove",
        "6": "remove",
    }

    third = run_sync(config, wh)
    assert (third.added, third.changed, third.removed, third.requests) == (0, 0, 0, 0)
    assert emulator.duplicates() == 0
    runs = wh.query("select status, folded from cdp_sync.sync_runs order by started_at")
    assert runs == [{"status": "success", "folded": True}] * 3


def test_only_mapped_columns_count_as_changes(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    wh.execute("alter table main.people add column unmapped varchar default 'a'")
    config = people_sync(emulator.url, tmp_path)
    run_sync(config, wh)
    wh.execute("update main.people set unmapped = 'b'")
    assert run_sync(config, wh).changed == 0
    wh.execute("update main.people set last_name = 'Other' where id = 11")
    assert run_sync(config, wh).changed == 1


def test_changing_the_mapping_resends_everything(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    run_sync(people_sync(emulator.url, tmp_path), wh)
    mapping = {
        "email": "email",
        "name": {"template": "{first_name} {last_name}"},
        "score": "score",
        "source": {"constant": "v2"},
    }
    second = run_sync(people_sync(emulator.url, tmp_path, mapping=mapping), wh)
    assert (second.added, second.changed) == (0, 270)
    assert {r["source"] for r in emulator.records.values()} == {"v2"}


# -- modes -------------------------------------------------------------------------------------------


def test_mirror_never_removes_a_record_it_did_not_add(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    emulator.seed("foreign-1", {"email": "someone@else.com"})
    emulator.seed("7", {"email": "pre-existing@else.com"})  # same key as a source row: we will upsert it
    config = people_sync(emulator.url, tmp_path)
    run_sync(config, wh)
    wh.execute("delete from main.people where id in (7, 8)")
    summary = run_sync(config, wh)
    assert summary.removed == 2
    assert "foreign-1" in emulator.records
    assert "7" not in emulator.records and "8" not in emulator.records
    # an empty source removes everything this sync added, and nothing else
    wh.execute("delete from main.people")
    run_sync(config, wh)
    assert emulator.records == {"foreign-1": {"email": "someone@else.com"}}


def test_consent_revoked_removes_in_mirror_and_is_invalid_otherwise(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    config = people_sync(emulator.url, tmp_path)
    run_sync(config, wh)
    wh.execute("update main.people set consent_email_marketing = false where id = 21")
    summary = run_sync(config, wh)
    assert summary.removed == 1 and "21" not in emulator.records
    assert run_sync(config, wh).invalid == 31
    wh.execute("update main.people set consent_email_marketing = null where id = 22")
    assert run_sync(config, wh).removed == 1  # null consent is no consent


def test_upsert_never_removes(wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path) -> None:
    config = people_sync(emulator.url, tmp_path, mode="upsert")
    run_sync(config, wh)
    wh.execute("delete from main.people where id < 100")
    summary = run_sync(config, wh)
    assert (summary.removed, summary.requests) == (0, 0)
    assert len(emulator.records) == 270


def test_update_mode_rejects_records_missing_in_destination(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    for key in ("1", "2", "3"):
        emulator.seed(key, {"email": "old"})
    config = people_sync(emulator.url, tmp_path, mode="update")
    summary = run_sync(config, wh)
    assert (summary.delivered, summary.rejected, summary.status) == (3, 267, "partial")
    assert emulator.records["1"]["email"] == "user1@example.com"
    reasons = {r["reason"] for r in records_of(wh, summary.run_id, "rejected")}
    assert reasons == {"no such record to update"}
    # rejected records stay pending and are retried on the next run
    assert sum(1 for r in state_rows(wh).values() if r["status"] == "rejected") == 267
    emulator.seed("4", {"email": "old"})
    again = run_sync(config, wh)
    assert (again.delivered, again.rejected) == (1, 266)
    assert not state_rows(wh)["4"]["in_destination"]  # updated, not added: not on the ledger


def test_insert_and_append_send_new_records_only(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    for mode in ("insert", "append"):
        emulator.records.clear()
        create_people(wh, 300)
        config = people_sync(emulator.url, tmp_path, name=f"p-{mode}", mode=mode)
        assert run_sync(config, wh).added == 270
        wh.execute("update main.people set score = score + 1 where id = 1")
        wh.execute("insert into main.people values (5000, 'x@example.com', 'X', 'Y', 1, true)")
        wh.execute("delete from main.people where id = 2")
        summary = run_sync(config, wh)
        assert (summary.added, summary.changed, summary.removed) == (1, 0, 0)
        assert emulator.records["1"]["score"] == 3  # the change was not sent
    assert [k for k, _ in emulator.appended][-1] == "5000"


def test_audience_removals_carry_the_fields_last_delivered(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    config = people_sync(emulator.url, tmp_path, mode="audience")
    run_sync(config, wh)
    assert emulator.delivery_counts("add")["1"] == 1
    wh.execute("delete from main.people where id = 1")
    summary = run_sync(config, wh)
    assert summary.removed == 1
    body = json.loads(emulator.requests[-1].body)
    assert body["type"] == "cdp.sync.remove"
    assert body["data"]["records"] == [
        {
            "key": "1",
            "fields": {"email": "user1@example.com", "name": "First1 Last1", "score": 3, "source": "cdp"},
        }
    ]


# -- invalid records ---------------------------------------------------------------------------------


def test_invalid_records_are_counted_recorded_and_not_sent(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    wh.execute("insert into main.people values (null, 'nokey@example.com', 'No', 'Key', 1, true)")
    wh.execute("insert into main.people values (11, 'dup@example.com', 'Dup', 'Key', 1, true)")
    wh.execute("update main.people set email = null where id = 12")
    destination = {"type": "webhook", "url": emulator.url, "secret": SECRET_ENV, "required_fields": ["email"]}
    config = people_sync(emulator.url, tmp_path, destination=destination)
    summary = run_sync(config, wh)
    invalid = records_of(wh, summary.run_id, "invalid")
    reasons: dict[str, list[Any]] = {}
    for r in invalid:
        reasons.setdefault(r["reason"], []).append(r["record_key"])
    assert sorted(reasons["duplicate primary key"]) == ["11", "11"]  # every copy
    assert reasons["null primary key"] == [None]
    assert reasons["missing required field(s): email"] == ["12"]
    assert len(reasons["missing consent"]) == 30
    assert summary.invalid == len(invalid) == 34
    assert summary.source_rows == 302
    assert summary.added + summary.invalid == 302  # every row accounted for
    assert "11" not in emulator.records and "12" not in emulator.records
    # fixing the duplicate sends the record
    wh.execute("delete from main.people where email = 'dup@example.com'")
    fixed = run_sync(config, wh)
    assert fixed.added == 1 and "11" in emulator.records


@pytest.mark.parametrize("mode", ["audience", "mirror", "upsert"])
def test_unchanged_invalid_records_are_counted_every_run_but_recorded_once(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path, mode: str
) -> None:
    wh.execute("insert into main.people values (null, 'nokey@example.com', 'No', 'Key', 1, true)")
    wh.execute("insert into main.people values (11, 'dup@example.com', 'Dup', 'Key', 1, true)")
    wh.execute("update main.people set email = null where id = 12")
    destination = {"type": "webhook", "url": emulator.url, "secret": SECRET_ENV, "required_fields": ["email"]}
    config = people_sync(emulator.url, tmp_path, destination=destination, mode=mode)
    first = run_sync(config, wh)
    assert first.invalid == len(records_of(wh, first.run_id, "invalid")) == 34

    journal = wh.scalar("select count(*) from cdp_sync.sync_records")
    for _ in range(2):  # nothing changed: still invalid, counted, not recorded again
        again = run_sync(config, wh)
        assert (again.invalid, again.requests) == (34, 0)
        run = wh.query("select invalid from cdp_sync.sync_runs where run_id = ?", [again.run_id])[0]
        assert run["invalid"] == 34  # a user still sees how many are invalid
    assert wh.scalar("select count(*) from cdp_sync.sync_records") == journal, "the journal must not grow"
    assert len(state.invalid_records(wh, "people", limit=100)) == 32  # keys: the duplicate is one

    # Changes are recorded once each: new content of an invalid record, a new reason, a new bad row.
    wh.execute("update main.people set first_name = 'Changed' where id = 20")  # still no consent
    wh.execute("update main.people set consent_email_marketing = true, email = null where id = 30")
    wh.execute("update main.people set first_name = 'Other' where id is null")  # a different keyless row
    changed = run_sync(config, wh)
    recorded = {(r["record_key"], r["reason"]) for r in records_of(wh, changed.run_id, "invalid")}
    assert recorded == {
        ("20", "missing consent"),
        ("30", "missing required field(s): email"),
        (None, "null primary key"),
    }
    assert changed.invalid == 34
    quiet = run_sync(config, wh)
    assert quiet.invalid == 34 and not records_of(wh, quiet.run_id, "invalid")

    # A record that becomes valid is sent normally, and recorded again if it turns invalid again.
    wh.execute("update main.people set email = 'back@example.com' where id = 12")
    fixed = run_sync(config, wh)
    assert fixed.added == 1 and emulator.records["12"]["email"] == "back@example.com"
    assert fixed.invalid == 33
    wh.execute("update main.people set email = null where id = 12")
    broken = run_sync(config, wh)
    if mode == "audience":  # it cannot be sent any more, so the audience drops it; then it is invalid
        assert (broken.removed, broken.invalid) == (1, 33) and "12" not in emulator.records
        broken = run_sync(config, wh)
    else:
        assert "12" in emulator.records  # upsert never removes; a mirror by key leaves it alone
    assert broken.invalid == 34
    assert [r["record_key"] for r in records_of(wh, broken.run_id, "invalid")] == ["12"]

    # A reset forgets what was recorded: the next run records every invalid record again.
    reset_sync(config, wh)
    after_reset = run_sync(config, wh)
    assert len(records_of(wh, after_reset.run_id, "invalid")) == after_reset.invalid


# -- delivery: retries, splitting, pending records --------------------------------------------------


def test_throttling_and_5xx_are_retried(wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path) -> None:
    emulator.faults = FaultConfig(throttle_every=3, error_5xx_every=4, retry_after=0.01)
    # Half the requests fail and four workers interleave, so a batch may draw several failures in a
    # row on a busy machine: enough attempts that giving up would take a 2**-12 streak.
    retry = {"max_attempts": 12, "initial_delay": 0.01, "max_delay": 0.02}
    summary = run_sync(people_sync(emulator.url, tmp_path, retry=retry), wh)
    assert summary.status == "success"
    assert summary.retried >= 2
    assert summary.requests == 6 + summary.retried
    assert emulator.records == expected_state(wh)


def test_timeouts_are_retried(wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path) -> None:
    emulator.faults = FaultConfig(timeout_every=2, timeout_seconds=0.5)
    destination = {"type": "webhook", "url": emulator.url, "secret": SECRET_ENV, "timeout": 0.2}
    summary = run_sync(people_sync(emulator.url, tmp_path, destination=destination, batch_size=100), wh)
    assert summary.status == "success" and summary.retried >= 1
    assert emulator.records == expected_state(wh)


def test_retry_after_is_honoured(wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path) -> None:
    emulator.faults = FaultConfig(throttle_every=2, retry_after=0.3)
    t0 = time.monotonic()
    summary = run_sync(people_sync(emulator.url, tmp_path, batch_size=100), wh)
    assert summary.retried >= 1
    assert time.monotonic() - t0 >= 0.3 * summary.retried


def test_exhausted_retries_mark_records_failed_then_next_run_delivers(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    emulator.faults = FaultConfig(error_5xx_every=1)
    config = people_sync(emulator.url, tmp_path)
    summary = run_sync(config, wh)
    assert (summary.status, summary.failed, summary.delivered) == ("partial", 270, 0)
    assert summary.requests == 6 * 4  # max_attempts per batch
    assert {r["status"] for r in state_rows(wh).values()} == {"failed"}
    emulator.faults = FaultConfig()
    again = run_sync(config, wh)
    assert (again.status, again.added, again.delivered) == ("success", 270, 270)
    assert emulator.records == expected_state(wh)


def test_a_rejected_batch_is_split_to_isolate_bad_records(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    emulator.faults = FaultConfig(reject_values=("user17@example.com", "user123@example.com"))
    summary = run_sync(people_sync(emulator.url, tmp_path), wh)
    assert (summary.status, summary.rejected, summary.delivered) == ("partial", 2, 268)
    assert summary.splits > 0
    rejected = records_of(wh, summary.run_id, "rejected")
    assert {r["record_key"] for r in rejected} == {"17", "123"}
    assert all(r["http_status"] == 400 and "HTTP 400" in r["reason"] for r in rejected)
    assert set(emulator.records) == set(expected_state(wh)) - {"17", "123"}


def test_rejected_records_are_retried_on_later_runs(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    emulator.record_reject_values = ("user33@example.com",)
    config = people_sync(emulator.url, tmp_path)
    assert run_sync(config, wh).rejected == 1
    again = run_sync(config, wh)  # still refused: still pending, attempts count up
    assert (again.added, again.rejected) == (1, 1)
    assert state_rows(wh)["33"]["attempts"] == 2
    emulator.record_reject_values = ()
    wh.execute("insert into main.people values (7000, 'late@example.com', 'L', 'M', 1, true)")
    retried = run_sync(config, wh, only_pending=True)  # `cdp sync retry`: only the pending record
    assert (retried.added, retried.delivered) == (1, 1)
    assert "33" in emulator.records and "7000" not in emulator.records
    assert run_sync(config, wh).added == 1


def test_pending_record_that_leaves_the_source_is_forgotten(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    emulator.record_reject_values = ("user33@example.com",)
    config = people_sync(emulator.url, tmp_path)
    run_sync(config, wh)
    wh.execute("delete from main.people where id = 33")
    summary = run_sync(config, wh)
    assert (summary.removed, summary.requests) == (0, 0)  # never delivered: nothing to remove
    assert "33" not in state_rows(wh)


def test_terminal_error_stops_the_run_and_nothing_is_lost(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    emulator.gone = True
    config = people_sync(emulator.url, tmp_path)
    summary = run_sync(config, wh)
    assert summary.status == "failed" and "410" in (summary.error or "")
    assert summary.delivered == 0 and state_rows(wh) == {}
    emulator.gone = False
    assert run_sync(config, wh).added == 270
    assert emulator.records == expected_state(wh)


def test_wrong_secret_is_refused_with_401(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "whsec_" + "A" * 40)
    summary = run_sync(people_sync(emulator.url, tmp_path), wh)
    assert summary.status == "failed" and "401" in (summary.error or "")
    assert emulator.rejected_signatures >= 1 and emulator.records == {}
    assert "A" * 40 not in (summary.error or "")


def test_rate_limit_and_concurrency(wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path) -> None:
    emulator.faults = FaultConfig(rate_limit_per_second=40)
    destination = {
        "type": "webhook",
        "url": emulator.url,
        "secret": SECRET_ENV,
        "requests_per_second": 40,
        "max_concurrency": 3,
    }
    t0 = time.monotonic()
    summary = run_sync(people_sync(emulator.url, tmp_path, destination=destination, batch_size=10), wh)
    elapsed = time.monotonic() - t0
    assert summary.requests >= 27 and summary.status == "success"
    assert elapsed >= (27 - 1) / 40 * 0.9  # paced, not bursted
    assert summary.retried <= 2  # pacing keeps us under the receiver's limit
    assert emulator.records == expected_state(wh)


# -- plan, reset, lock, alerts -----------------------------------------------------------------------


def test_plan_is_offline_and_shows_the_exact_request(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    config = people_sync(emulator.url, tmp_path)
    plan = plan_sync(config, wh, samples=2)
    assert plan.counts == {"add": 270, "change": 0, "remove": 0, "invalid": 30}
    assert plan.operations == {"upsert": 270} and plan.batches == 6
    assert emulator.request_count == 0
    method, url, headers, body = plan.requests[0]
    assert (method, url) == ("POST", emulator.url)
    request = Request("POST", "/webhook", {}, {k.lower(): v for k, v in headers.items()}, body)
    assert emulator.authenticate(request) is None  # the planned signature verifies
    assert len(json.loads(body)["data"]["records"]) == 50
    assert not wh.scalar("select count(*) from cdp_sync.sync_runs")
    # a destination that cannot be reached is fine: nothing is sent
    offline = people_sync("http://127.0.0.1:9/webhook", tmp_path)
    assert plan_sync(offline, wh).counts["add"] == 270


def test_reset_resends_everything_and_still_removes_from_the_ledger(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    emulator.seed("foreign-1", {"email": "someone@else.com"})
    config = people_sync(emulator.url, tmp_path)
    run_sync(config, wh)
    assert reset_sync(config, wh) == 270
    wh.execute("delete from main.people where id in (1, 2)")
    summary = run_sync(config, wh)
    assert (summary.added, summary.changed, summary.removed) == (0, 268, 2)
    assert set(emulator.records) == set(expected_state(wh)) | {"foreign-1"}


def test_a_second_run_of_the_same_sync_fails_fast(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    config = people_sync(emulator.url, tmp_path)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with SyncLock(wh.path, "people"):
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(SyncLocked, match="already running"):
            run_sync(config, wh)
    finally:
        release.set()
        t.join()
    # another process holding the lock file
    path = lock_path(wh.path, "people")
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'pid 4242'); print('locked', flush=True); time.sleep(10)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(SyncLocked, match="pid 4242"):
            run_sync(config, wh)
    finally:
        proc.kill()
        proc.wait()
    assert run_sync(config, wh).status == "success"


class AlertReceiver(Emulator):
    name = "alerts"

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[Any] = []

    @route("POST", "/alert")
    def alert(self, request: Request) -> Response:
        self.posts.append(request.json())
        return Response(200, {"ok": True})


def test_alerts_on_failure_rejections_and_volume(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AlertReceiver() as receiver:
        monkeypatch.setenv("CDP_TEST_ALERT_URL", receiver.base_url + "/alert")
        monkeypatch.setenv("CDP_TEST_SLACK_URL", receiver.base_url + "/alert")
        alerts = {
            "on_failure": True,
            "rejection_rate": 0.05,
            "volume_change": 0.5,
            "webhook_url_env": "CDP_TEST_ALERT_URL",
        }
        config = people_sync(emulator.url, tmp_path, alerts=alerts)
        assert run_sync(config, wh).alerts == []
        emulator.record_reject_values = tuple(f"user{i}@example.com" for i in range(1000, 1100))
        create_people(wh, 200, start=1000)  # everyone new, 100 of the 180 consented rejected; volume -33%
        summary = run_sync(config, wh)
        assert [a.split(":")[0] for a in summary.alerts] == ["sync people"]
        assert "rejected or failed" in summary.alerts[0]
        assert receiver.posts[-1]["type"] == "cdp.sync.alert" and receiver.posts[-1]["run"]["rejected"] == 90
        wh.execute("delete from main.people where id > 1020")
        summary = run_sync(config, wh)
        assert any("source has 21 records, 200 on the previous run" in a for a in summary.alerts)
        emulator.gone = True
        wh.execute("update main.people set score = 0")
        slack = people_sync(emulator.url, tmp_path, alerts={"slack_webhook_env": "CDP_TEST_SLACK_URL"})
        failed = run_sync(slack, wh)
        assert failed.status == "failed" and "failed" in failed.alerts[0]
        assert receiver.posts[-1]["text"].startswith("sync people failed: TerminalError: HTTP 410")
        stored = wh.scalar("select alerts from cdp_sync.sync_runs where run_id = ?", [failed.run_id])
        assert stored.startswith("sync people failed")


def test_state_is_folded_after_a_killed_run(wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path) -> None:
    """A run whose process died has its journal but was never folded; the next run folds it first."""
    config = people_sync(emulator.url, tmp_path)
    state.ensure_schema(wh)
    state.start_run(wh, "dead-run", "people", "mirror", "webhook")
    state.write_journal(
        wh, "dead-run", "people", [state.JournalEntry("1", "upsert", "synced", 200, None, 123, "{}")]
    )
    summary = run_sync(config, wh)
    assert summary.changed == 1 and summary.added == 269  # key 1 was acknowledged with another hash
    run = wh.query("select status, folded from cdp_sync.sync_runs where run_id = 'dead-run'")[0]
    assert run == {"status": "interrupted", "folded": True}


def test_a_large_journal_is_folded_in_parts_with_the_same_result(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "FOLD_PART_ROWS", 16)  # 300 journal rows: about 19 parts
    config = people_sync(emulator.url, tmp_path)
    first = run_sync(config, wh)
    assert first.status == "success" and len(state_rows(wh)) == 270
    wh.execute("update main.people set score = score + 1 where id % 4 = 0")
    wh.execute("delete from main.people where id % 9 = 0")
    second = run_sync(config, wh)
    assert second.status == "success" and emulator.records == expected_state(wh)
    assert {r["row_hash"] is not None and r["status"] == "synced" for r in state_rows(wh).values()} == {True}
    assert len(state_rows(wh)) == len(expected_state(wh))
    again = run_sync(config, wh)
    assert (again.added, again.changed, again.removed, again.requests) == (0, 0, 0, 0)


def test_duckdb_memory_is_bounded_during_a_run_and_restored_after(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = wh.scalar("select current_setting('memory_limit')")
    seen: list[str] = []
    config = people_sync(emulator.url, tmp_path)
    emulator.observers.append(lambda *_: seen.append("request"))
    monkeypatch.setenv("CDP_SYNC_MEMORY_LIMIT", "300MB")
    from reverse_etl.sync.engine import duckdb_memory_limit

    with duckdb_memory_limit(wh):
        inside = wh.scalar("select current_setting('memory_limit')")
    assert inside == "286.1 MiB"  # DuckDB shows 300MB in binary units
    assert run_sync(config, wh).status == "success" and seen
    assert wh.scalar("select current_setting('memory_limit')") == before
    monkeypatch.setenv("CDP_SYNC_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="CDP_SYNC_MEMORY_LIMIT='lots'"):
        run_sync(config, wh)
    assert wh.scalar("select current_setting('memory_limit')") == before
