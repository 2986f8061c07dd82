"""Audiences are sets of hashed identifiers: when a member's email or phone changes, the old identifier
must leave the audience, and a member who leaves the segment must leave with every identifier.

Each test runs real syncs (parsed config, the engine, real HTTP over loopback) against a vendor's
emulator and reads the emulator's own state: which identifiers it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reverse_etl.destinations import hashing as h
from reverse_etl.emulators import Emulator, FaultConfig, emulator_class
from reverse_etl.emulators.cli import connection
from reverse_etl.sync import parse_sync, run_sync
from reverse_etl.sync.config import SyncConfig
from reverse_etl.sync.state import load_destination_state
from reverse_etl.warehouse import Warehouse

Row = dict[str, Any]

PEOPLE = [
    (1, "Ann.One@Example.com", "020 7946 0001", "GB"),
    (2, "bob@example.com", None, "US"),
    (3, "cat@example.com", "(415) 555-0103", "US"),
    (4, "dan@example.com", None, "FR"),
    (5, "eve@example.com", "06 12 34 56 05", "FR"),
]


def _held_meta(em: Any, st: dict[str, Any]) -> set[str]:
    with em.lock:  # every identifier that still matches a member, not only the members' first keys
        return set(em.audiences[st["audience_id"]]["index"])


def _held_google(em: Any, st: dict[str, Any]) -> set[str]:
    list_id = st["user_list"].rsplit("/", 1)[-1]
    with em.lock:
        return {value for _kind, value in em.user_lists[list_id]["members"]}


def _held_linkedin(em: Any, st: dict[str, Any]) -> set[str]:
    with em.lock:
        return {value for _kind, value in em.segments[st["segment_id"]]["members"]}


def _held_tiktok(em: Any, st: dict[str, Any]) -> set[str]:
    with em.lock:
        return set().union(*em.audiences[st["audience_id"]]["members"].values())


def _digits_phone(row: Row) -> str | None:
    phone = h.normalise_phone_digits(row["phone"], row["country"])
    return h.sha256_hex(phone) if phone else None


def _e164_phone(row: Row) -> str | None:
    phone = h.normalise_phone_e164(row["phone"], row["country"])
    return h.sha256_hex(phone) if phone else None


# vendor -> (held identifiers, email hash, phone hash or None when the vendor takes no phone)
VENDORS: dict[str, tuple[Callable[[Any, dict[str, Any]], set[str]], Callable[[Row], str], Any]] = {
    "meta": (_held_meta, lambda r: h.sha256_hex(h.normalise_email(r["email"]) or ""), _digits_phone),
    "google_ads": (_held_google, lambda r: h.sha256_hex(h.normalise_email(r["email"]) or ""), _e164_phone),
    "linkedin": (_held_linkedin, lambda r: h.sha256_hex(h.normalise_email(r["email"]) or ""), None),
    "tiktok": (
        _held_tiktok,
        lambda r: h.sha256_hex(h.normalise_email_tiktok(r["email"]) or ""),
        _digits_phone,
    ),
}


def expected(name: str, rows: list[Row]) -> set[str]:
    _, email, phone = VENDORS[name]
    held = {email(r) for r in rows}
    if phone is not None:
        held |= {p for r in rows if (p := phone(r))}
    return held


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    warehouse = Warehouse(tmp_path / "cdp.duckdb")
    warehouse.execute(
        """create table main.members (customer_id integer, email varchar, phone varchar, country varchar,
           consent_ads_personalization boolean, consent_ad_user_data boolean)"""
    )
    for person in PEOPLE:
        warehouse.execute("insert into main.members values (?, ?, ?, ?, true, true)", list(person))
    try:
        yield warehouse
    finally:
        warehouse.close()


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    em = emulator_class(request.node.callspec.params["name"])()
    em.start()
    try:
        yield em
    finally:
        em.stop()


def audience_sync(
    name: str, em: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: Any
) -> SyncConfig:
    link = connection(name, em)
    for variable, value in link.env.items():
        monkeypatch.setenv(variable, value)
    mapping: dict[str, Any] = {"email": "email", "country": "country"}
    if VENDORS[name][2] is not None:
        mapping["phone"] = "phone"
    data: dict[str, Any] = {
        "name": f"members_{name}",
        "source": {"table": "main.members"},
        "destination": dict(link.settings),
        "mode": "audience",
        "primary_key": "customer_id",
        "mapping": mapping,
        "retry": {"max_attempts": 3, "initial_delay": 0.05, "max_delay": 0.2},
        **extra,
    }
    return parse_sync(data, tmp_path / f"members_{name}.yml")


def rows(wh: Warehouse) -> list[Row]:
    return wh.query("select * from main.members order by customer_id")


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_a_new_email_replaces_the_old_one_and_leaving_removes_every_identifier(
    name: str, wh: Warehouse, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = VENDORS[name][0]
    config = audience_sync(name, emulator, tmp_path, monkeypatch)
    first = run_sync(config, wh)
    assert (first.status, first.added) == ("success", 5), first
    dest_state = load_destination_state(wh, config.name)
    before = rows(wh)
    assert held(emulator, dest_state) == expected(name, before)

    # Ann and Bob change email; Ann keeps her phone.
    wh.execute("update main.members set email = 'ann.new@example.com' where customer_id = 1")
    wh.execute("update main.members set email = 'bob.new@example.com' where customer_id = 2")
    second = run_sync(config, wh)
    assert (second.status, second.changed, second.replaced, second.removed) == ("success", 2, 2, 0), second
    assert second.delivered == 2  # the removal half of a change is not a second delivery
    now = rows(wh)
    assert held(emulator, dest_state) == expected(name, now)
    stale = {VENDORS[name][1](r) for r in before if r["customer_id"] in (1, 2)}
    assert not stale & held(emulator, dest_state), "the old emails must leave the audience"

    again = run_sync(config, wh)  # nothing changed: nothing is sent, no removal loop
    assert (again.requests, again.replaced, again.changed) == (0, 0, 0)

    # Ann leaves the segment: her new email and her phone go.
    wh.execute("delete from main.members where customer_id = 1")
    third = run_sync(config, wh)
    assert (third.removed, third.status) == (1, "success")
    assert held(emulator, dest_state) == expected(name, rows(wh))
    ann = {VENDORS[name][1](r) for r in now if r["customer_id"] == 1}
    assert not ann & held(emulator, dest_state)


@pytest.mark.parametrize("name", ["meta"])
def test_a_change_stopped_after_its_removal_is_completed_by_the_next_run(
    name: str, wh: Warehouse, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The removal of the old identifiers is acknowledged and journaled; the run then stops (here the
    vendor revokes the token) before the add. The next run must add the new identifiers."""
    config = audience_sync(name, emulator, tmp_path, monkeypatch)
    assert run_sync(config, wh).status == "success"
    dest_state = load_destination_state(wh, config.name)
    wh.execute("update main.members set email = 'cat.new@example.com' where customer_id = 3")

    def revoke_after_removal(request: Any, response: Any, elapsed: float) -> None:
        if request.method == "DELETE" and response.status == 200:
            emulator.faults = FaultConfig(auth_failure=True)

    emulator.observers.append(revoke_after_removal)
    stopped = run_sync(config, wh)
    assert stopped.status == "failed" and stopped.replaced == 1 and stopped.changed == 0
    held = VENDORS[name][0](emulator, dest_state)
    assert held == expected(name, [r for r in rows(wh) if r["customer_id"] != 3]), "Cat removed, not re-added"

    emulator.observers.clear()
    emulator.faults = FaultConfig()
    resumed = run_sync(config, wh)
    assert (resumed.status, resumed.added, resumed.replaced) == ("success", 1, 0)
    assert VENDORS[name][0](emulator, dest_state) == expected(name, rows(wh))


@pytest.mark.parametrize("name", ["tiktok"])
def test_a_rejected_new_identifier_keeps_the_record_pending(
    name: str, wh: Warehouse, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old email is removed, the vendor refuses the new one: the record stays pending (rejected)
    and is completed once the vendor accepts it; the old email never comes back."""
    config = audience_sync(name, emulator, tmp_path, monkeypatch)
    assert run_sync(config, wh).status == "success"
    dest_state = load_destination_state(wh, config.name)
    wh.execute("update main.members set email = 'dan.new@example.com' where customer_id = 4")
    new_hash = h.sha256_hex("dan.new@example.com")
    emulator.faults = FaultConfig(reject_values=(new_hash,))
    refused = run_sync(config, wh)
    assert (refused.status, refused.rejected, refused.replaced) == ("partial", 1, 1)
    old_hash = h.sha256_hex("dan@example.com")
    assert old_hash not in VENDORS[name][0](emulator, dest_state)

    emulator.faults = FaultConfig()
    retried = run_sync(config, wh)
    assert (retried.status, retried.changed, retried.rejected) == ("success", 1, 0)
    assert VENDORS[name][0](emulator, dest_state) == expected(name, rows(wh))


def test_a_record_that_can_no_longer_be_sent_leaves_the_audience(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob's email becomes unusable and he has no phone: he cannot be sent, so the audience must not
    keep him under his old email. The next run counts him invalid, once recorded."""
    em = emulator_class("linkedin")()
    with em:
        config = audience_sync("linkedin", em, tmp_path, monkeypatch)
        run_sync(config, wh)
        dest_state = load_destination_state(wh, config.name)
        wh.execute("update main.members set email = 'not an email' where customer_id = 2")
        out = run_sync(config, wh)
        assert (out.removed, out.invalid) == (1, 0)
        assert _held_linkedin(em, dest_state) == expected(
            "linkedin", [r for r in rows(wh) if r["customer_id"] != 2]
        )
        later = run_sync(config, wh)
        assert (later.invalid, later.removed, later.requests) == (1, 0, 0)
