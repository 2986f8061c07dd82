"""Sync definitions are validated at load, with errors that name the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reverse_etl.sync.config import SyncConfigError, load_sync, load_syncs, parse_sync
from reverse_etl.sync.diff import field_sql

from .helpers import sync_dict, write_sync

URL = "http://127.0.0.1:9/webhook"


def parse(data: dict[str, Any], name: str = "x") -> Any:
    return parse_sync(data, Path("syncs") / f"{name}.yml")


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(SyncConfigError) as info:
        parse(data)
    return str(info.value)


def test_valid_config_is_typed() -> None:
    config = parse(sync_dict(URL, schedule="0 * * * *"))
    assert config.name == "x"  # defaults to the file stem
    assert config.mode == "mirror"
    assert config.operations == ("upsert", "remove")
    assert [m.kind for m in config.mapping] == ["column", "template", "column", "constant"]
    assert config.source_columns() == [
        "id",
        "email",
        "first_name",
        "last_name",
        "score",
        "consent_email_marketing",
    ]
    assert config.hashed_columns() == ["email", "first_name", "last_name", "score"]
    assert (
        field_sql(config.mapping[1])
        == """concat(coalesce(cast("first_name" as varchar), ''), ' ', coalesce(cast("last_name" as varchar), ''))"""
    )
    assert field_sql(config.mapping[3]) == "'cdp'"
    assert config.effective_batch_size(1000) == 50


def test_mode_typo_suggests_the_fix() -> None:
    msg = error_of(sync_dict(URL, mode="mirorr"))
    assert msg.startswith("syncs/x.yml: mode: 'mirorr' is not one of")
    assert "did you mean 'mirror'?" in msg


def test_unknown_top_level_key_is_an_error() -> None:
    data = sync_dict(URL)
    data["primay_key"] = "id"
    msg = error_of(data)
    assert "syncs/x.yml: primay_key: unknown key; did you mean 'primary_key'?" in msg


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"source": {"tabel": "main.people"}}, "source.tabel: unknown source kind; did you mean 'table'?"),
        ({"source": {"table": "people"}}, "source.table: 'people' is not schema.name"),
        (
            {"destination": {"type": "webhok", "url": URL}},
            "destination.type: 'webhok' is not a destination; did you mean 'webhook'?",
        ),
        (
            {"destination": {"type": "webhook", "url": URL, "secret": "whsec_abc+/="}},
            "destination.secret: secrets are named by environment variable",
        ),
        (
            {"destination": {"type": "webhook", "url": URL, "secret": "S", "urll": 1}},
            "destination.urll: 'webhook' has no such setting; did you mean 'url'?",
        ),
        (
            {"destination": {"type": "webhook", "secret": "S"}},
            "destination.url: 'webhook' needs this setting",
        ),
        ({"schedule": "every hour"}, "schedule: 'every hour' is not a cron expression"),
        ({"batch_size": 5000}, "batch_size: 5000 is over webhook's limit of 1000"),
        ({"batch_size": 0}, "batch_size: 0 is not valid"),
        (
            {"mapping": {"name": {"templat": "{a}"}}},
            "mapping.name.templat: unknown mapping kind; did you mean 'template'?",
        ),
        ({"mapping": {"name": {"template": "{first name}"}}}, "mapping.name: template placeholder"),
        ({"mapping": {"name": {"template": "hello"}}}, "use `constant:` for fixed values"),
        ({"mapping": {}}, "mapping: map destination fields"),
        ({"alerts": {"on_failur": True}}, "alerts.on_failur: unknown key; did you mean 'on_failure'?"),
        (
            {"alerts": {"slack_webhook_env": "https://hooks.slack.com/x"}},
            "alerts.slack_webhook_env: name the environment variable",
        ),
        ({"alerts": {"rejection_rate": 5}}, "alerts.rejection_rate: 5 is not valid"),
        ({"retry": {"max_attempts": 0}}, "retry.max_attempts: 0 is not valid"),
        ({"consent": "email marketing"}, "consent: a list of purposes"),
        ({"primary_key": ["a", "b"]}, "primary_key:"),
        ({"name": "Bad Name"}, "name: 'Bad Name' is not a valid sync name"),
    ],
)
def test_errors_name_file_key_and_fix(override: dict[str, Any], expected: str) -> None:
    msg = error_of(sync_dict(URL, **override))
    assert msg.startswith("syncs/x.yml: ")
    assert expected in msg


def test_missing_required_key() -> None:
    data = sync_dict(URL)
    del data["primary_key"]
    assert "syncs/x.yml: primary_key: is required" in error_of(data)


def test_load_syncs_collects_errors_per_file(tmp_path: Path) -> None:
    directory = tmp_path / "syncs"
    write_sync(directory, "good", sync_dict(URL))
    write_sync(directory, "bad", sync_dict(URL, mode="mirorr"))
    (directory / "broken.yml").write_text("source: [unclosed\n")
    syncs, errors = load_syncs(directory)
    assert list(syncs) == ["good"]
    messages = sorted(str(e) for e in errors)
    assert len(messages) == 2
    assert "bad.yml: mode:" in messages[0]
    assert "broken.yml: not valid YAML" in messages[1]
    with pytest.raises(SyncConfigError, match="bad.yml: mode"):
        load_sync(directory, "bad")
    with pytest.raises(SyncConfigError, match="no sync named 'goood'.*did you mean 'good'"):
        load_sync(directory, "goood")


def test_duplicate_names_are_an_error(tmp_path: Path) -> None:
    directory = tmp_path / "syncs"
    write_sync(directory, "a", sync_dict(URL, name="same"))
    write_sync(directory, "b", sync_dict(URL, name="same"))
    syncs, errors = load_syncs(directory)
    assert list(syncs) == ["same"]
    assert "names must be unique" in str(errors[0])


def test_mode_must_be_supported_by_destination() -> None:
    # every mode is supported by the webhook; a files sync accepts them too
    for mode in ("upsert", "update", "insert", "mirror", "audience", "append"):
        assert parse(sync_dict(URL, mode=mode)).mode == mode
