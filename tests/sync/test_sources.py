"""Sources: a dbt model through the manifest, a segment of marts.segment_members, a table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reverse_etl.emulators.webhook import WebhookEmulator
from reverse_etl.sync.config import SyncConfigError
from reverse_etl.sync.diff import resolve_source
from reverse_etl.sync.engine import run_sync
from reverse_etl.warehouse import Warehouse

from .helpers import people_sync

MAPPING = {"email": "email"}


def test_model_resolves_through_the_manifest(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    wh.execute("create schema marts")
    wh.execute("create table marts.customers_v2 as select * from main.people")
    manifest = {
        "metadata": {"project_name": "cdp"},
        "nodes": {
            "model.cdp.customers": {
                "resource_type": "model",
                "name": "customers",
                "package_name": "cdp",
                "schema": "marts",
                "alias": "customers_v2",
            }
        },
    }
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest))
    config = people_sync(emulator.url, tmp_path, source={"model": "customers"})
    assert resolve_source(config, wh, tmp_path).describe() == "marts.customers_v2"
    assert run_sync(config, wh, project=tmp_path).added == 270
    typo = people_sync(emulator.url, tmp_path, source={"model": "customer"})
    with pytest.raises(SyncConfigError, match="no dbt model named 'customer'; did you mean 'customers'"):
        resolve_source(typo, wh, tmp_path)
    (tmp_path / "target" / "manifest.json").unlink()
    with pytest.raises(SyncConfigError, match="run `cdp build`"):
        resolve_source(config, wh, tmp_path)


def test_segment_source_leaves_out_holdouts_and_refuses_typos(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    wh.execute("create schema marts")
    wh.execute(
        """create table marts.segment_members as
           select case when id < 50 then 'vip' else 'lapsed' end as segment_name,
                  id as customer_id, email, consent_email_marketing, id % 5 = 1 as is_holdout
           from main.people"""
    )
    config = people_sync(
        emulator.url,
        tmp_path,
        source={"segment": "vip"},
        mode="audience",
        primary_key="customer_id",
        mapping=MAPPING,
    )
    summary = run_sync(config, wh)
    # 50 members, 5 without consent (ids 0, 10, ...), 10 holdouts (ids 1, 6, ...)
    assert summary.added == 35 and summary.invalid == 5
    assert "1" not in emulator.records and "2" in emulator.records
    wh.execute("delete from marts.segment_members where segment_name = 'vip'")
    # no rows and no dbt model of that name: refused rather than removing everyone
    with pytest.raises(SyncConfigError, match="no segment named 'vip' \\(segments with members: lapsed\\)"):
        run_sync(config, wh, project=tmp_path)
    # a segment dbt knows that everyone left is legitimately empty: its members are removed
    manifest = {"nodes": {"model.cdp.vip": {"resource_type": "model", "name": "vip", "schema": "segments"}}}
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest))
    assert run_sync(config, wh, project=tmp_path).removed == 35
    assert emulator.records == {}
    typo = people_sync(
        emulator.url, tmp_path, source={"segment": "lapsd"}, primary_key="customer_id", mapping=MAPPING
    )
    with pytest.raises(SyncConfigError, match="no segment named 'lapsd'; did you mean 'lapsed'"):
        run_sync(typo, wh)


def test_missing_columns_are_named_with_a_suggestion(
    wh: Warehouse, emulator: WebhookEmulator, tmp_path: Path
) -> None:
    config = people_sync(emulator.url, tmp_path, mapping={"email": "emial"})
    with pytest.raises(
        SyncConfigError, match="mapping: column 'emial' is not in main.people; did you mean 'email'"
    ):
        run_sync(config, wh)
    config = people_sync(emulator.url, tmp_path, consent=["sms"])
    with pytest.raises(SyncConfigError, match=r"consent \(sms\): column 'consent_sms' is not in main.people"):
        run_sync(config, wh)
    config = people_sync(emulator.url, tmp_path, source={"table": "main.nobody"})
    with pytest.raises(SyncConfigError, match="main.nobody does not exist"):
        run_sync(config, wh)
