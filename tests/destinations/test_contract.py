"""One contract suite for every registered destination, run against its emulator over loopback HTTP.

A destination joins the suite by adding a Case to CASES below: how to configure it against the emulator,
what a record looks like, how to read the emulator's state, and which value makes the emulator refuse
one record. ``test_every_destination_has_a_case`` fails until it does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from reverse_etl.destinations import REGISTRY as DESTINATIONS
from reverse_etl.destinations import destination_class
from reverse_etl.destinations import hashing as h
from reverse_etl.destinations.base import (
    BatchRejected,
    Destination,
    Record,
    SyncContext,
    TerminalError,
    TransientError,
)
from reverse_etl.emulators import REGISTRY as EMULATORS
from reverse_etl.emulators import Emulator, FaultConfig, emulator_class

RETRY_AFTER = 6.0  # what the emulator's throttle signal asks for, in seconds


def person(i: int) -> dict[str, Any]:
    """A messy but valid person: mixed case and spaces, national phone format."""
    return {
        "email": f" Person.{i}@Example.com",
        "phone": f"(415) 555-{i % 10000:04d}",
        "first_name": "Ann",
        "last_name": "Lee",
        "country": "US",
        "postal_code": "94110",
        "external_id": f"crm-{i}",
        "user_id": f"u{i}",
    }


def email_of(record: Record) -> str:
    return h.normalise_email(record.fields["email"]) or ""


def slack_channel_members(emulator: Emulator) -> set[str]:
    """Who is in the segment, as a reader of the channel would conclude from the digests so far."""
    present: set[str] = set()
    for message in emulator.messages():  # type: ignore[attr-defined]
        heading = message["blocks"][0]["text"]["text"]
        labels = {
            match.group(1)
            for block in message["blocks"]
            if block["type"] == "section"
            for match in re.finditer(r"^• \*(.+?)\*", block["text"]["text"], re.MULTILINE)
        }
        present = present - labels if heading.endswith(" left") else present | labels
    return present


@dataclass
class Case:
    """How the contract suite drives one destination and reads its emulator."""

    name: str
    settings: Callable[[str], dict[str, Any]]  # base_url -> settings (secrets name env vars)
    env: dict[str, str]  # env var -> the credential the emulator accepts
    members: Callable[[Emulator, SyncContext], set[str]]  # emulator state, as identities
    identity: Callable[[Record], str]  # a record's identity as members() reports it
    reject_value: Callable[[Record], str]  # FaultConfig.reject_values entry that refuses this record
    mode: str = "audience"
    add: str = "add"
    record: Callable[[int], dict[str, Any]] = person
    retry_hint: Callable[[float], float | None] = lambda seconds: seconds
    retry_tolerance: float = 1e-6  # seconds; vendors that send a reset time instead of a wait need more
    rejects_whole_batch: bool = False
    emulator_kwargs: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "meta": Case(
        name="meta",
        settings=lambda url: {"ad_account_id": "1234567890", "access_token": "T_META_TOKEN", "base_url": url},
        env={"T_META_TOKEN": "meta-test-token"},
        members=lambda em, ctx: em.members(ctx.state["audience_id"]),
        identity=lambda r: h.sha256_hex(email_of(r)),
        reject_value=lambda r: h.sha256_hex(email_of(r)),
    ),
    "google_ads": Case(
        name="google_ads",
        settings=lambda url: {
            "customer_id": "123-456-7890",
            "developer_token": "T_GADS_DEV",
            "access_token": "T_GADS_TOKEN",
            "base_url": url,
        },
        env={"T_GADS_DEV": "dev-token", "T_GADS_TOKEN": "ya29.test"},
        members=lambda em, ctx: em.list_identifiers(ctx.state["user_list"]),
        identity=lambda r: h.sha256_hex(email_of(r)),
        reject_value=lambda r: h.sha256_hex(email_of(r)),
    ),
    "hubspot": Case(
        name="hubspot",
        settings=lambda url: {"access_token": "T_HUBSPOT_TOKEN", "base_url": url},
        env={"T_HUBSPOT_TOKEN": "pat-na1-test"},
        members=lambda em, ctx: em.list_member_emails(ctx.state["list_id"]),
        identity=email_of,
        reject_value=email_of,
        record=lambda i: {"email": f" Person.{i}@Example.com", "firstname": "Ann", "lifecyclestage": "lead"},
        retry_hint=lambda seconds: seconds,  # X-HubSpot-RateLimit-Interval-Milliseconds of the window
    ),
    "klaviyo": Case(
        name="klaviyo",
        settings=lambda url: {"api_key": "T_KLAVIYO_KEY", "base_url": url},
        env={"T_KLAVIYO_KEY": "pk_test"},
        members=lambda em, ctx: em.list_member_emails(ctx.state["list_id"]),
        identity=email_of,
        reject_value=email_of,
    ),
    "braze": Case(
        name="braze",
        settings=lambda url: {"api_key": "T_BRAZE_KEY", "base_url": url},
        env={"T_BRAZE_KEY": "braze-test-key"},
        members=lambda em, ctx: em.emails_with(f"cdp_{ctx.sync_name}"),
        identity=email_of,
        reject_value=email_of,
        retry_tolerance=0.5,  # X-RateLimit-Reset is a point in time
    ),
    "mailchimp": Case(
        name="mailchimp",
        settings=lambda url: {
            "api_key": "T_MAILCHIMP_KEY",
            "list_id": "a1b2c3d4e5",
            "default_status": "subscribed",
            "base_url": url,
        },
        env={"T_MAILCHIMP_KEY": "mc-test-key-us6"},
        members=lambda em, ctx: em.segment_emails("a1b2c3d4e5", ctx.state["segment_id"]),
        identity=email_of,
        reject_value=email_of,
        retry_hint=lambda seconds: None,  # 429 on too many connections carries no wait
    ),
    "salesforce": Case(
        name="salesforce",
        settings=lambda url: {
            "base_url": url,
            "access_token": "T_SF_TOKEN",
            "external_id_field": "Email_Key__c",
        },
        env={"T_SF_TOKEN": "00Dxx0000000001!AQ4AQ.test"},
        members=lambda em, ctx: em.with_field("Contact", ctx.state["audience_field"]),
        identity=lambda r: r.fields["Email_Key__c"],
        reject_value=lambda r: r.fields["Email_Key__c"],
        record=lambda i: {"Email_Key__c": f"person.{i}@example.com", "FirstName": "Ann", "LastName": "Lee"},
        retry_hint=lambda seconds: None,  # 403 REQUEST_LIMIT_EXCEEDED carries no wait
    ),
    "tiktok": Case(
        name="tiktok",
        settings=lambda url: {
            "advertiser_id": "7012345678901234567",
            "access_token": "T_TIKTOK_TOKEN",
            "base_url": url,
        },
        env={"T_TIKTOK_TOKEN": "tt-test-token"},
        members=lambda em, ctx: em.members(ctx.state["audience_id"]),
        identity=lambda r: h.sha256_hex(h.normalise_email_tiktok(r.fields["email"]) or ""),
        reject_value=lambda r: h.sha256_hex(h.normalise_email_tiktok(r.fields["email"]) or ""),
        retry_hint=lambda seconds: 1.0,  # code 40100 carries no wait; the per-second window is next second
        rejects_whole_batch=True,  # segment/mapping succeeds or fails as a whole
    ),
    "linkedin": Case(
        name="linkedin",
        settings=lambda url: {
            "ad_account_id": "512345678",
            "access_token": "T_LINKEDIN_TOKEN",
            "create_wait_seconds": 0,
            "base_url": url,
        },
        env={"T_LINKEDIN_TOKEN": "li-test-token"},
        members=lambda em, ctx: em.members(ctx.state["segment_id"]),
        identity=lambda r: h.sha256_hex(email_of(r)),
        reject_value=lambda r: h.sha256_hex(email_of(r)),
        retry_hint=lambda seconds: None,  # 429 without a documented Retry-After
    ),
    "iterable": Case(
        name="iterable",
        settings=lambda url: {"api_key": "T_ITERABLE_KEY", "base_url": url},
        env={"T_ITERABLE_KEY": "it-test-key"},
        members=lambda em, ctx: em.list_members(ctx.state["list_id"]),
        identity=email_of,
        reject_value=email_of,
        retry_hint=lambda seconds: None,  # 429 RateLimitExceeded carries no wait
    ),
    "customerio": Case(
        name="customerio",
        settings=lambda url: {
            "site_id": "site-123",
            "api_key": "T_CIO_KEY",
            "app_api_key": "T_CIO_APP_KEY",
            "base_url": url,
            "app_base_url": url,
        },
        env={"T_CIO_KEY": "cio-track-key", "T_CIO_APP_KEY": "cio-app-key"},
        members=lambda em, ctx: em.segment_members(ctx.state["segment_id"]),
        identity=lambda r: r.fields["user_id"],
        reject_value=lambda r: r.fields["user_id"],
        retry_hint=lambda seconds: None,  # 429 carries no wait
    ),
    "slack": Case(
        name="slack",
        settings=lambda url: {"webhook_url": "T_SLACK_URL", "base_url": url},
        env={"T_SLACK_URL": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"},
        members=lambda em, ctx: slack_channel_members(em),
        identity=email_of,
        reject_value=email_of,
        rejects_whole_batch=True,  # one message per request: Slack refuses the whole digest
    ),
}


def test_every_destination_has_a_case() -> None:
    assert set(DESTINATIONS) - {"webhook", "files"} <= set(CASES), "add a Case for each new destination"
    assert set(CASES) <= set(EMULATORS), "each destination in the suite needs an emulator"


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Case:
    selected = CASES[request.param]
    for name, value in selected.env.items():
        monkeypatch.setenv(name, value)
    return selected


@pytest.fixture
def emulator(case: Case) -> Iterator[Emulator]:
    em = emulator_class(case.name)(FaultConfig(), **case.emulator_kwargs)
    em.start()
    yield em
    em.stop()


@pytest.fixture
def destination(case: Case, emulator: Emulator) -> Iterator[Destination]:
    dest = destination_class(case.name)(case.settings(emulator.base_url), source=f"test:{case.name}")
    yield dest
    dest.close()


@pytest.fixture
def context(case: Case, destination: Destination) -> SyncContext:
    ctx = SyncContext(sync_name=f"contract_{case.name}", mode=case.mode, primary_key="user_id")
    destination.prepare(ctx)
    return ctx


def records(case: Case, n: int, start: int = 0) -> list[Record]:
    return [Record(key=f"k{i}", fields=case.record(i)) for i in range(start, start + n)]


# -- the contract --------------------------------------------------------------------------------


def test_check_ok(destination: Destination) -> None:
    result = destination.check()
    assert result.ok, result.message


def test_wrong_credentials(case: Case, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in case.env:
        monkeypatch.setenv(name, "wrong-credential")
    dest = destination_class(case.name)(case.settings(emulator.base_url))
    result = dest.check()
    assert not result.ok
    assert "wrong-credential" not in result.message
    ctx = SyncContext(sync_name="wrong", mode=case.mode, primary_key="user_id")
    with pytest.raises(TerminalError):
        dest.prepare(ctx)
        dest.send_batch(case.add, records(case, 1), ctx)


def test_full_batch_lands(
    case: Case, destination: Destination, emulator: Emulator, context: SyncContext
) -> None:
    """A batch at the vendor's maximum is accepted, and the vendor then holds exactly what was sent."""
    batch = records(case, destination.limits.max_batch_size)
    results = destination.send_batch(case.add, batch, context)
    assert [r.key for r in results if not r.ok] == []
    assert sorted(r.key for r in results) == sorted(r.key for r in batch)
    assert case.members(emulator, context) == {case.identity(r) for r in batch}


def test_over_the_limit_is_refused_before_sending(
    case: Case, destination: Destination, context: SyncContext
) -> None:
    with pytest.raises(ValueError, match="exceed"):
        destination.build_request(case.add, records(case, destination.limits.max_batch_size + 1), context)


def test_sent_request_is_the_built_request(
    case: Case, destination: Destination, emulator: Emulator, context: SyncContext
) -> None:
    """send_batch sends what build_request (and so `cdp sync plan`) shows."""
    batch = records(case, 3)
    planned = destination.build_request(case.add, batch, context)
    before = len(emulator.requests)
    destination.send_batch(case.add, batch, context)
    sent = emulator.requests[before:]
    bodies = [json.loads(r.body) if r.body else None for r in sent]
    assert planned[3] in bodies
    assert len(sent) == len(destination.plan_requests(case.add, batch, context))


def test_throttle_is_transient_with_the_vendor_hint(
    case: Case, destination: Destination, emulator: Emulator, context: SyncContext
) -> None:
    emulator.faults = FaultConfig(throttle_every=1, retry_after=RETRY_AFTER)
    with pytest.raises(TransientError) as caught:
        destination.send_batch(case.add, records(case, 2), context)
    expected = case.retry_hint(RETRY_AFTER)
    if expected is None:
        assert caught.value.retry_after is None
    else:
        assert caught.value.retry_after == pytest.approx(expected, abs=case.retry_tolerance)


def test_server_error_is_transient(
    destination: Destination, case: Case, emulator: Emulator, context: SyncContext
) -> None:
    emulator.faults = FaultConfig(error_5xx_every=1)
    with pytest.raises(TransientError):
        destination.send_batch(case.add, records(case, 2), context)


def test_one_bad_record(
    case: Case, destination: Destination, emulator: Emulator, context: SyncContext
) -> None:
    """A record the vendor refuses fails alone (or fails the batch where the vendor works that way)."""
    batch = records(case, 5)
    emulator.faults = FaultConfig(reject_values=(case.reject_value(batch[2]),))
    if case.rejects_whole_batch:
        with pytest.raises(BatchRejected):
            destination.send_batch(case.add, batch, context)
        return
    results = {r.key: r for r in destination.send_batch(case.add, batch, context)}
    assert not results["k2"].ok and results["k2"].reason
    assert all(results[f"k{i}"].ok for i in (0, 1, 3, 4))
    assert case.members(emulator, context) == {case.identity(r) for i, r in enumerate(batch) if i != 2}


def test_record_without_identifier_is_rejected_locally(
    case: Case, destination: Destination, emulator: Emulator, context: SyncContext
) -> None:
    batch = [*records(case, 2), Record(key="junk", fields={"email": "undefined", "phone": "0000"})]
    results = {r.key: r for r in destination.send_batch(case.add, batch, context)}
    assert not results["junk"].ok and results["junk"].reason
    assert results["k0"].ok and results["k1"].ok


def test_remove(case: Case, destination: Destination, emulator: Emulator, context: SyncContext) -> None:
    batch = records(case, 6)
    destination.send_batch(case.add, batch, context)
    results = destination.send_batch("remove", batch[:2], context)
    assert all(r.ok for r in results)
    assert case.members(emulator, context) == {case.identity(r) for r in batch[2:]}


def test_prepare_creates_once(case: Case, destination: Destination, emulator: Emulator) -> None:
    """prepare() creates the audience or list when missing and finds it again on the next run."""
    first = SyncContext(sync_name="prepare_once", mode=case.mode, primary_key="user_id")
    destination.prepare(first)
    destination.send_batch(case.add, records(case, 2), first)
    second = SyncContext(sync_name="prepare_once", mode=case.mode, primary_key="user_id")
    destination.prepare(second)
    assert second.state == first.state
    assert case.members(emulator, second) == {case.identity(r) for r in records(case, 2)}


def test_secrets_are_env_var_names(case: Case, emulator: Emulator) -> None:
    dest = destination_class(case.name)(case.settings(emulator.base_url))
    secrets = {s.name for s in dest.settings_spec if s.secret}
    assert secrets, "credentials must be secret settings (env var names)"
    for value in case.env.values():
        assert value in dest.secret_values()
