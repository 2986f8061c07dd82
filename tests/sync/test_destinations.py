"""The webhook signature scheme and the files destination."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import json
import time
from pathlib import Path

import duckdb
import pytest
import requests

from reverse_etl.destinations.base import ConfigError, Record, SyncContext, TerminalError
from reverse_etl.destinations.files import FilesDestination
from reverse_etl.destinations.webhook import WebhookDestination, decode_secret, message_id, sign
from reverse_etl.emulators.webhook import WebhookEmulator
from reverse_etl.sync.engine import run_sync
from reverse_etl.warehouse import Warehouse

from .helpers import SECRET_ENV, people_sync

CTX = SyncContext(sync_name="s", mode="mirror", primary_key="id")


def test_signature_is_hmac_sha256_of_id_timestamp_body() -> None:
    key = b"0123456789abcdef0123456789abcdef"
    body = b'{"a":1}'
    expected = base64.b64encode(hmac.new(key, b"msg_1.1674087231." + body, hashlib.sha256).digest()).decode()
    assert sign(key, "msg_1", 1674087231, body) == "v1," + expected
    assert decode_secret("whsec_" + base64.b64encode(key).decode()) == key
    with pytest.raises(ConfigError, match="whsec_"):
        decode_secret("whsec_not base64!")


def test_message_id_is_stable_for_a_batch_and_differs_between_batches() -> None:
    a = [Record("1", {"x": 1})]
    assert message_id("s", "upsert", a) == message_id("s", "upsert", [Record("1", {"x": 1})])
    assert message_id("s", "upsert", a) != message_id("s", "upsert", [Record("1", {"x": 2})])
    assert message_id("s", "upsert", a) != message_id("s", "remove", a)


def test_receiver_rejects_tampered_stale_and_unsigned_requests(
    emulator: WebhookEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = WebhookDestination({"url": emulator.url, "secret": SECRET_ENV})
    method, url, headers, body = dest.build_request("upsert", [Record("1", {"email": "a@b.c"})], CTX)
    assert requests.post(url, data=body, headers=headers, timeout=5).status_code == 200
    assert (
        requests.post(url, data=body.replace(b"a@b.c", b"x@b.c"), headers=headers, timeout=5).status_code
        == 401
    )
    stale = dict(headers, **{"webhook-timestamp": str(int(time.time()) - 3600)})
    assert requests.post(url, data=body, headers=stale, timeout=5).status_code == 401
    assert requests.post(url, data=body, timeout=5).status_code == 401
    assert emulator.records == {"1": {"email": "a@b.c"}}
    # key rotation: the old and the new secret both sign; the receiver knows only one of them
    other = "whsec_" + base64.b64encode(b"another-secret-0123456789abcdef!").decode()
    monkeypatch.setenv(SECRET_ENV, f"{other} {emulator.secret}")
    rotated = WebhookDestination({"url": emulator.url, "secret": SECRET_ENV})
    _, _, headers, body = rotated.build_request("upsert", [Record("2", {})], CTX)
    assert len(headers["webhook-signature"].split()) == 2
    assert requests.post(url, data=body, headers=headers, timeout=5).status_code == 200


def test_webhook_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "whsec_" + base64.b64encode(b"x" * 32).decode())
    with pytest.raises(ConfigError, match="must start with https://"):
        WebhookDestination({"url": "ftp://x", "secret": SECRET_ENV})
    with pytest.raises(ConfigError, match="max_concurrency must be a positive number"):
        WebhookDestination({"url": "https://x", "secret": SECRET_ENV, "max_concurrency": 0})
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ConfigError, match=f"export {SECRET_ENV}="):
        WebhookDestination({"url": "https://x", "secret": SECRET_ENV})


def test_webhook_check_sends_a_signed_event(emulator: WebhookEmulator) -> None:
    dest = WebhookDestination({"url": emulator.url, "secret": SECRET_ENV})
    assert dest.check().ok
    emulator.gone = True
    assert not dest.check().ok


def _files_sync(tmp_path: Path, url: str, fmt: str, per_run: bool, mode: str = "mirror") -> object:
    destination = {"type": "files", "path": str(tmp_path / "out"), "format": fmt, "file_per_run": per_run}
    return people_sync(url, tmp_path, name=f"f-{fmt}", destination=destination, mode=mode, batch_size=100)


def test_files_csv_one_file_per_run_with_operation_column(wh: Warehouse, tmp_path: Path) -> None:
    config = _files_sync(tmp_path, "", "csv", True)
    run_sync(config, wh)
    wh.execute("delete from main.people where id in (1, 2)")
    wh.execute("update main.people set score = 99 where id = 3")
    run_sync(config, wh)
    files = sorted((tmp_path / "out" / "f-csv").glob("*.csv"))
    assert len(files) == 2
    with files[1].open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["_operation", "_key", "email", "name", "score", "source"]
    assert sorted((r["_operation"], r["_key"]) for r in rows) == [
        ("remove", "1"),
        ("remove", "2"),
        ("upsert", "3"),
    ]
    assert (
        next(r for r in rows if r["_key"] == "1")["email"] == "user1@example.com"
    )  # removals carry the last fields


def test_files_jsonl_appends_and_insert_has_no_operation_column(wh: Warehouse, tmp_path: Path) -> None:
    config = _files_sync(tmp_path, "", "jsonl", False, mode="insert")
    run_sync(config, wh)
    wh.execute("insert into main.people values (900, 'n@example.com', 'N', 'M', 1, true)")
    run_sync(config, wh)
    path = tmp_path / "out" / "f-jsonl.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 271
    assert lines[-1] == {"_key": "900", "email": "n@example.com", "name": "N M", "score": 1, "source": "cdp"}


def test_files_parquet_parts_are_readable(wh: Warehouse, tmp_path: Path) -> None:
    config = _files_sync(tmp_path, "", "parquet", True, mode="upsert")
    summary = run_sync(config, wh)
    parts = sorted((tmp_path / "out" / "f-parquet").rglob("*.parquet"))
    assert len(parts) == 3  # 270 records in batches of 100
    pattern = str(tmp_path / "out" / "f-parquet" / "*" / "*.parquet")
    n, ops = duckdb.sql(
        f"select count(*), count(distinct _operation) from read_parquet('{pattern}')"
    ).fetchall()[0]
    assert (n, ops, summary.delivered) == (270, 1, 270)


def test_files_csv_append_refuses_a_different_layout(tmp_path: Path) -> None:
    dest = FilesDestination({"path": str(tmp_path), "format": "csv", "file_per_run": False})
    ctx = SyncContext(sync_name="s", mode="insert", primary_key="id")
    dest.send_batch("insert", [Record("1", {"a": 1})], ctx)
    dest.send_batch("insert", [Record("2", {})], ctx)  # fewer fields: empty cells
    with pytest.raises(TerminalError, match="also writes"):
        dest.send_batch("insert", [Record("3", {"b": 1})], ctx)
    assert (tmp_path / "s.csv").read_text() == "_key,a\n1,1\n2,\n"
    method, target, _, body = dest.build_request("insert", [Record("4", {"a": 2})], ctx)
    assert (method, target, body) == ("WRITE", str(tmp_path / "s.csv"), b"4,2\n")
