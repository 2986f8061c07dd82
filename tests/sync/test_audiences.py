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


# -- email-keyed lists -----------------------------------------------------------------------------
# Email platforms hold list members by the vendor's own key: a subscriber hash of the address
# (Mailchimp), the project's identifier (Iterable), a profile found by any identifier (Klaviyo). What
# the list holds is read back as the members' emails.


def _held_klaviyo(em: Any, st: dict[str, Any], settings: dict[str, Any]) -> set[str]:
    return em.list_member_emails(st["list_id"])


def _held_mailchimp(em: Any, st: dict[str, Any], settings: dict[str, Any]) -> set[str]:
    return em.segment_emails(settings["list_id"], st["segment_id"])


def _held_iterable(em: Any, st: dict[str, Any], settings: dict[str, Any]) -> set[str]:
    with em.lock:  # members are held by identifier; their emails are what a campaign reaches
        users = [em.users[ident] for ident in em.lists[int(st["list_id"])]["members"]]
    return {u.get("email") or u["dataFields"]["email"] for u in users}


def _held_hubspot(em: Any, st: dict[str, Any], settings: dict[str, Any]) -> set[str]:
    return em.list_member_emails(st["list_id"])


# vendor -> (held emails, how many of Ann's and Bob's email changes are a removal and an add).
# Klaviyo finds Ann's profile by her unchanged phone, so her new email is an update of it; Bob has no
# phone, so his new email would be a new profile and his old one is removed first.
LISTS: dict[str, tuple[Callable[[Any, dict[str, Any], dict[str, Any]], set[str]], int]] = {
    "klaviyo": (_held_klaviyo, 1),
    "mailchimp": (_held_mailchimp, 2),
    "iterable": (_held_iterable, 2),
}


def list_sync(
    name: str, em: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str = "audience"
) -> SyncConfig:
    link = connection(name, em)
    for variable, value in link.env.items():
        monkeypatch.setenv(variable, value)
    destination = dict(link.settings)
    mapping: dict[str, Any] = {"email": "email", "phone": "phone", "country": "country"}
    if name == "mailchimp":
        destination["default_status"] = "subscribed"
    if name == "iterable" and getattr(em, "identifier", "email") == "userId":
        destination["identifier"] = "userId"
        mapping["user_id"] = "customer_id"
    data: dict[str, Any] = {
        "name": f"members_{name}_{mode}",
        "source": {"table": "main.members"},
        "destination": destination,
        "mode": mode,
        "primary_key": "customer_id",
        "mapping": mapping,
        "retry": {"max_attempts": 3, "initial_delay": 0.05, "max_delay": 0.2},
    }
    return parse_sync(data, tmp_path / f"members_{name}_{mode}.yml")


def emails(rows: list[Row]) -> set[str]:
    return {h.normalise_email(r["email"]) or "" for r in rows}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_a_list_member_whose_email_changed_is_held_by_the_new_email_only(
    name: str, wh: Warehouse, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held, replaced = LISTS[name]
    config = list_sync(name, emulator, tmp_path, monkeypatch)
    settings = dict(config.destination.settings)
    first = run_sync(config, wh)
    assert (first.status, first.added) == ("success", 5), first
    dest_state = load_destination_state(wh, config.name)
    assert held(emulator, dest_state, settings) == emails(rows(wh))

    wh.execute("update main.members set email = 'ann.new@example.com' where customer_id = 1")
    wh.execute("update main.members set email = 'bob.new@example.com' where customer_id = 2")
    second = run_sync(config, wh)
    assert (second.status, second.changed, second.replaced, second.removed) == (
        "success",
        2,
        replaced,
        0,
    ), second
    assert held(emulator, dest_state, settings) == emails(rows(wh))
    assert not {"ann.one@example.com", "bob@example.com"} & held(emulator, dest_state, settings)

    again = run_sync(config, wh)  # nothing changed: nothing is sent
    assert (again.requests, again.replaced, again.changed) == (0, 0, 0)

    wh.execute("delete from main.members where customer_id = 1")  # Ann leaves the segment
    third = run_sync(config, wh)
    assert (third.status, third.removed) == ("success", 1), third
    assert held(emulator, dest_state, settings) == emails(rows(wh))
    assert "ann.new@example.com" not in held(emulator, dest_state, settings)


@pytest.mark.parametrize("name", ["klaviyo"])
def test_klaviyo_updates_the_profile_a_kept_phone_finds_and_replaces_one_found_by_email_only(
    name: str, wh: Warehouse, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Klaviyo lists hold profile ids. Ann keeps her phone: the import finds her profile by it and
    changes its email, so she is never taken off the list. Bob has only an email: his new one would
    be a second profile, so his old profile leaves the list and stays in the account."""
    config = list_sync(name, emulator, tmp_path, monkeypatch)
    run_sync(config, wh)
    dest_state = load_destination_state(wh, config.name)
    members = emulator.lists[dest_state["list_id"]]["members"]  # type: ignore[attr-defined]
    ids_before = set(members)
    wh.execute("update main.members set email = 'ann.new@example.com' where customer_id = 1")
    wh.execute("update main.members set email = 'bob.new@example.com' where customer_id = 2")
    out = run_sync(config, wh)
    assert out.replaced == 1
    ids_after = set(members)
    assert len(ids_after - ids_before) == 1, "only Bob's new email is a new profile"
    assert len(ids_before - ids_after) == 1, "only Bob's old profile left the list"
    assert "bob@example.com" in emulator.emails()  # type: ignore[attr-defined]
    assert "ann.one@example.com" not in emulator.emails()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["iterable"])
def test_an_iterable_user_id_project_updates_the_email_of_the_same_member(
    name: str, wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A userId project keys list members by userId; the email is a field of the user, so a new email
    is an update (no removal), and the list holds the same users with the new email."""
    em = emulator_class(name)(identifier="userId")
    with em:
        config = list_sync(name, em, tmp_path, monkeypatch)
        settings = dict(config.destination.settings)
        assert run_sync(config, wh).added == 5
        dest_state = load_destination_state(wh, config.name)
        members_before = em.list_members(dest_state["list_id"])
        wh.execute("update main.members set email = 'ann.new@example.com' where customer_id = 1")
        out = run_sync(config, wh)
        assert (out.status, out.changed, out.replaced, out.removed) == ("success", 1, 0, 0), out
        assert em.list_members(dest_state["list_id"]) == members_before == {str(p[0]) for p in PEOPLE}
        assert _held_iterable(em, dest_state, settings) == emails(rows(wh))
        assert run_sync(config, wh).requests == 0
        wh.execute("delete from main.members where customer_id = 1")
        assert run_sync(config, wh).removed == 1
        assert "1" not in em.list_members(dest_state["list_id"])


# HubSpot lists hold contact ids and a contact is upserted by email, so in audience mode a new email is
# a new contact and the old one must leave the list. In mirror mode the removal archives the contact,
# which an email change must never do: the engine needs a per-mode answer from the destination
# (docs/syncs.md, "When a member's identifiers change").


@pytest.mark.parametrize("name", ["hubspot"])
def test_hubspot_mirror_never_archives_a_contact_because_its_email_changed(
    name: str, wh: Warehouse, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = list_sync(name, emulator, tmp_path, monkeypatch, mode="mirror")
    assert run_sync(config, wh).added == 5
    wh.execute("update main.members set email = 'ann.new@example.com' where customer_id = 1")
    wh.execute("update main.members set email = 'not an email' where customer_id = 2")
    out = run_sync(config, wh)
    assert (out.status, out.changed, out.replaced, out.removed, out.invalid) == ("success", 1, 0, 0, 1), out
    held = emulator.emails()  # type: ignore[attr-defined]
    assert {"ann.one@example.com", "ann.new@example.com", "bob@example.com"} <= held, "nothing archived"


@pytest.mark.parametrize("name", ["hubspot"])
def test_hubspot_audience_list_holds_the_new_email_only(
    name: str, wh: Warehouse, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = list_sync(name, emulator, tmp_path, monkeypatch)
    settings = dict(config.destination.settings)
    assert run_sync(config, wh).added == 5
    dest_state = load_destination_state(wh, config.name)
    wh.execute("update main.members set email = 'ann.new@example.com' where customer_id = 1")
    wh.execute("update main.members set email = 'bob.new@example.com' where customer_id = 2")
    out = run_sync(config, wh)
    assert (out.status, out.changed, out.replaced, out.removed) == ("success", 2, 2, 0), out
    assert _held_hubspot(emulator, dest_state, settings) == emails(rows(wh))
    # The old contacts leave the list but stay in the CRM: audience mode never archives.
    assert {"ann.one@example.com", "bob@example.com"} <= emulator.emails()  # type: ignore[attr-defined]
    assert run_sync(config, wh).requests == 0
    wh.execute("delete from main.members where customer_id = 1")
    assert run_sync(config, wh).removed == 1
    assert _held_hubspot(emulator, dest_state, settings) == emails(rows(wh))
    assert "ann.new@example.com" in emulator.emails()  # type: ignore[attr-defined]
