"""Consent and the right to be forgotten, end to end: raw data, `cdp run` (dbt build + syncs), signed
webhook receivers on loopback, `cdp privacy forget` and `cdp privacy status`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from click.testing import CliRunner, Result

from reverse_etl.cli import cli
from reverse_etl.emulators.webhook import WebhookEmulator
from tests.rawdata import RawData

SECRET_ENV = "CDP_TEST_PRIVACY_SECRET"
# What the syncs read, with its data tests; unit tests do not read the data, so they are left out.
DBT_ARGS = [
    "--select",
    "+customer_profiles",
    "--exclude",
    "test_type:unit",
    "--indirect-selection",
    "cautious",
]

PEOPLE = {
    "ann": "ann@example.org",
    "bob": "bob@example.org",
    "cat": "cat@example.org",
}


def _person(raw: RawData, minutes: float, name: str) -> None:
    email = PEOPLE[name]
    raw.page(minutes, anonymous_id=f"dev-{name}")
    raw.identify(
        minutes + 1,
        anonymous_id=f"dev-{name}",
        user_id=f"u-{name}",
        email=email.upper(),
        first_name=name.title(),
        last_name="Example",
    )
    _consent(raw, minutes + 2, email, "granted")


_consent_ids = iter(range(1, 10_000))


def _consent(raw: RawData, minutes: float, email: str, status: str) -> None:
    from tests.rawdata import at

    raw.insert(
        "consent.consent_events",
        [
            {
                "consent_event_id": f"ce-{next(_consent_ids)}",
                "identifier_type": "email",
                "identifier": email,
                "purpose": "email_marketing",
                "status": status,
                "occurred_at": at(minutes),
                "source": "preference_center",
            }
        ],
    )


@dataclass
class World:
    database: Path
    syncs: Path
    target: Path
    mirror: WebhookEmulator  # customer_id-keyed mirror of marts.customer_profiles
    upsert: WebhookEmulator  # email-keyed upsert: a mode that never removes on its own
    env: dict[str, str]
    runs: list[Result]
    forget: Result | None = None
    sync_before_build: Result | None = None

    def cdp(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.env, catch_exceptions=False)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


def _write_sync(directory: Path, name: str, data: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.yml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, dbt_target: Path) -> Iterator[World]:
    root = tmp_path_factory.mktemp("privacy")
    database = root / "cdp.duckdb"
    raw = RawData(database)
    for i, name in enumerate(PEOPLE):
        _person(raw, i * 10, name)
    raw.flush()
    mirror, upsert = WebhookEmulator(), WebhookEmulator()
    mirror.start()
    upsert.start()
    syncs = root / "syncs"
    common = {"destination": {"type": "webhook", "secret": SECRET_ENV}, "consent": ["email_marketing"]}
    _write_sync(
        syncs,
        "profiles_mirror",
        {
            **common,
            "source": {"model": "customer_profiles"},  # resolved from this build's manifest
            "destination": {**common["destination"], "url": mirror.url},
            "mode": "mirror",
            "primary_key": "customer_id",
            "mapping": {"email": "email", "first_name": "first_name"},
        },
    )
    _write_sync(
        syncs,
        "emails_upsert",
        {
            **common,
            "source": {"table": "marts.customer_profiles"},
            "destination": {**common["destination"], "url": upsert.url},
            "mode": "upsert",
            "primary_key": "email",
            "mapping": {"email": "email", "first_name": "first_name"},
        },
    )
    env = {
        "CDP_DUCKDB_PATH": str(database),
        "CDP_SYNCS_DIR": str(syncs),
        SECRET_ENV: mirror.secret,  # both emulators use the default secret
    }
    w = World(database, syncs, dbt_target, mirror, upsert, env, [])
    try:
        w.runs.append(w.cdp("run", "--target-path", str(dbt_target), *DBT_ARGS))
        assert w.runs[0].exit_code == 0, w.runs[0].output
        # Bob revokes email consent; Ann asks to be forgotten.
        with RawData(database) as more:
            _consent(more, 100, PEOPLE["bob"], "revoked")
        w.forget = w.cdp("privacy", "forget", "ANN@example.org ", "--yes", "--requested-by", "ticket-42")
        assert w.forget.exit_code == 0, w.forget.output
        # A sync run before the next build already stops sending Ann and removes her, even in upsert mode.
        w.sync_before_build = w.cdp("sync", "run", "emails_upsert")
        w.runs.append(w.cdp("run", "--target-path", str(dbt_target), *DBT_ARGS))
        yield w
    finally:
        mirror.stop()
        upsert.stop()


def _request_id(w: World) -> str:
    assert w.forget is not None
    return w.forget.output.split("request ", 1)[1].split(":", 1)[0]


def _customer(w: World, name: str) -> str | None:
    rows = w.query(
        f"select customer_id from marts.identity_graph where identifier_type = 'user_id' and identifier_value = 'u-{name}'"
    )
    return rows[0][0] if rows else None


def test_first_run_sends_everyone_with_consent(world: World) -> None:
    first = world.runs[0]
    assert "dbt build passed" in first.output
    assert "2 of 2 sync(s) ran" in first.output
    # What each receiver held after the first run is in its delivery log.
    first_mirror = {d.key for d in world.mirror.deliveries if d.operation == "upsert"}
    assert len(first_mirror) == 3
    first_upsert = {d.key for d in world.upsert.deliveries if d.operation == "upsert"}
    assert first_upsert == set(PEOPLE.values())


def test_forget_resolves_every_identifier_of_the_customer(world: World) -> None:
    assert world.forget is not None
    out = world.forget.output
    assert "recorded for erasure" in out
    # user_id, email, anonymous_id, and the customer id itself.
    assert "1 anonymous_id" in out and "1 email" in out and "1 user_id" in out and "customer_id" in out
    stored = world.query(
        "select identifier_type, identifier_hash, value_hash from cdp_privacy.forgotten_identifiers"
    )
    assert len(stored) >= 4
    # Hashes only: the erasure list does not keep what it erases.
    dump = json.dumps(stored)
    assert "ann@example.org" not in dump and "u-ann" not in dump


def test_upsert_sync_removes_a_forgotten_person_before_the_build_catches_up(world: World) -> None:
    assert world.sync_before_build is not None
    assert world.sync_before_build.exit_code == 0, world.sync_before_build.output
    removals = [d.key for d in world.upsert.deliveries if d.operation == "remove"]
    assert removals == [PEOPLE["ann"]]
    assert PEOPLE["ann"] not in world.upsert.records


def test_revoked_consent_and_erasure_leave_the_mirror(world: World) -> None:
    second = world.runs[1]
    assert second.exit_code == 0, second.output
    held = {fields["email"] for fields in world.mirror.records.values()}
    assert held == {PEOPLE["cat"]}
    removed = {d.key for d in world.mirror.deliveries if d.operation == "remove"}
    assert len(removed) == 2
    # The upsert sync cannot act on a revocation (its mode never removes) but Ann stays gone.
    assert set(world.upsert.records) == {PEOPLE["bob"], PEOPLE["cat"]}


def test_the_build_excludes_the_forgotten_person(world: World) -> None:
    assert _customer(world, "ann") is None
    assert _customer(world, "bob") is not None
    rows = world.query(
        "select count(*) from intermediate.int_identifiers where lower(identifier_value) in "
        "('ann@example.org', 'u-ann', 'dev-ann')"
    )
    assert rows == [(0,)]
    # Her events stay on the timeline for counts, without her identifiers.
    carried = world.query(
        "select count(*) from marts.customer_events where lower(email) = 'ann@example.org' "
        "or user_id = 'u-ann' or anonymous_id = 'dev-ann'"
    )
    assert carried == [(0,)]
    emails = {r[0] for r in world.query("select email from marts.customer_profiles")}
    assert emails == {PEOPLE["bob"], PEOPLE["cat"]}


def test_sync_logs_are_purged_of_the_person(world: World) -> None:
    dump = json.dumps(
        world.query("select record_key, reason, payload from cdp_sync.sync_records"), default=str
    )
    dump += json.dumps(
        world.query("select record_key, payload, last_error from cdp_sync.sync_state"), default=str
    )
    assert "ann@example.org" not in dump.lower()
    assert "redacted:" in dump
    # Bob and Cat's history is untouched.
    assert PEOPLE["cat"] in dump


def test_status_shows_every_step_and_completion(world: World) -> None:
    rid = _request_id(world)
    steps = world.query(f"select step, sync_name from cdp_privacy.deletion_audit where request_id = '{rid}'")
    kinds = {(s, n) for s, n in steps}
    assert ("requested", None) in kinds
    assert ("excluded_from_build", None) in kinds
    assert ("removed", "emails_upsert") in kinds and ("removed", "profiles_mirror") in kinds
    assert ("purged", "emails_upsert") in kinds and ("purged", "profiles_mirror") in kinds
    assert ("completed", None) in kinds
    shown = world.cdp("privacy", "status", rid)
    assert shown.exit_code == 0, shown.output
    assert f"request {rid}: completed" in shown.output
    assert "excluded (none of the identifiers is in identity_graph)" in shown.output
    listed = world.cdp("privacy", "status")
    assert rid in listed.output and "completed" in listed.output
    missing = world.cdp("privacy", "status", "del_nope")
    assert missing.exit_code != 0 and "no deletion request 'del_nope'" in missing.output


def test_forget_refuses_what_it_cannot_resolve(world: World) -> None:
    unknown = world.cdp("privacy", "forget", "nobody@nowhere.invalid", "--yes")
    assert unknown.exit_code != 0
    assert "is not in marts.identity_graph" in unknown.output and "--type" in unknown.output
    typed = world.cdp("privacy", "forget", "Nobody@Nowhere.invalid", "--type", "email", "--yes")
    assert typed.exit_code == 0, typed.output
    assert "warning: not found in marts.identity_graph" in typed.output


# -- consent a destination needs, without dbt -------------------------------------------------------


def test_ad_destination_needs_ad_consent_and_a_revocation_leaves_the_audience(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Meta sync that names no consent still sends only people who granted ads_personalization and
    ad_user_data; revoking either removes them from the audience on the next run."""
    from reverse_etl.destinations import hashing
    from reverse_etl.emulators.meta import MetaEmulator
    from reverse_etl.privacy import effective_purposes
    from reverse_etl.sync.config import parse_sync
    from reverse_etl.sync.engine import run_sync
    from reverse_etl.warehouse import Warehouse

    em = MetaEmulator()
    em.start()
    monkeypatch.setenv("T_META_TOKEN", em.access_token)
    try:
        config = parse_sync(
            {
                "source": {"table": "main.audience"},
                "destination": {
                    "type": "meta",
                    "ad_account_id": "1234567890",
                    "access_token": "T_META_TOKEN",
                    "base_url": em.base_url,
                },
                "mode": "audience",
                "primary_key": "id",
                "mapping": {"email": "email"},
            },
            tmp_path / "syncs" / "meta_audience.yml",
        )
        assert config.consent == ()
        assert effective_purposes(config) == ("ads_personalization", "ad_user_data")
        with Warehouse(tmp_path / "cdp.duckdb") as wh:
            wh.execute(
                """create table main.audience as
                   select i as id, 'person' || i || '@example.com' as email,
                          i % 4 <> 0 as consent_ads_personalization, i % 5 <> 0 as consent_ad_user_data
                   from range(40) t(i)"""
            )
            first = run_sync(config, wh)
            assert first.status == "success", first.error
            audience = em.audience_by_name("meta_audience")
            assert audience is not None

            def expected() -> set[str]:
                rows = wh.query(
                    "select email from main.audience where consent_ads_personalization and consent_ad_user_data"
                )
                return {hashing.sha256_hex(r["email"]) for r in rows}

            assert em.members(audience) == expected() and len(expected()) == 24
            assert first.invalid == 16  # kept back, reason 'missing consent'
            wh.execute("update main.audience set consent_ad_user_data = false where id in (1, 2)")
            second = run_sync(config, wh)
            assert second.removed == 2
            assert em.members(audience) == expected() and len(expected()) == 22
            assert hashing.sha256_hex("person1@example.com") not in em.members(audience)
    finally:
        em.stop()
