"""Vendor-specific behaviour the shared contract suite does not reach."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from reverse_etl.destinations import hashing as h
from reverse_etl.destinations.base import (
    BatchRejected,
    ConfigError,
    Record,
    SyncContext,
    TerminalError,
    TransientError,
)
from reverse_etl.destinations.customerio import CustomerIoPeople
from reverse_etl.destinations.google_ads import GoogleAdsCustomerMatch
from reverse_etl.destinations.hubspot import HubSpotContacts
from reverse_etl.destinations.iterable import IterableUsers
from reverse_etl.destinations.klaviyo import KlaviyoProfiles
from reverse_etl.destinations.linkedin import LinkedInAudiences
from reverse_etl.destinations.mailchimp import MailchimpMembers
from reverse_etl.destinations.meta import MetaCustomAudiences
from reverse_etl.destinations.salesforce import SalesforceUpsert
from reverse_etl.destinations.slack import SlackWebhook
from reverse_etl.destinations.tiktok import TikTokAudiences
from reverse_etl.emulators import FaultConfig
from reverse_etl.emulators.customerio import CustomerIoEmulator
from reverse_etl.emulators.google_ads import GoogleAdsEmulator
from reverse_etl.emulators.hubspot import HubSpotEmulator
from reverse_etl.emulators.iterable import IterableEmulator
from reverse_etl.emulators.linkedin import LinkedInEmulator
from reverse_etl.emulators.mailchimp import MailchimpEmulator
from reverse_etl.emulators.meta import MetaEmulator
from reverse_etl.emulators.salesforce import SalesforceEmulator
from reverse_etl.emulators.slack import SlackEmulator
from reverse_etl.emulators.tiktok import TikTokEmulator


@pytest.fixture
def meta(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MetaEmulator, MetaCustomAudiences, SyncContext]]:
    monkeypatch.setenv("T_META", "meta-test-token")
    monkeypatch.setenv("T_META_SECRET", "app-secret")
    with MetaEmulator(app_secret="app-secret") as em:
        dest = MetaCustomAudiences(
            {
                "ad_account_id": "act_1234567890",
                "access_token": "T_META",
                "app_secret": "T_META_SECRET",
                "base_url": em.base_url,
            }
        )
        ctx = SyncContext("vip", "audience", "user_id")
        dest.prepare(ctx)
        yield em, dest, ctx


def test_meta_payload_is_hashed_and_sessioned(
    meta: tuple[MetaEmulator, MetaCustomAudiences, SyncContext],
) -> None:
    em, dest, ctx = meta
    method, url, _, body = dest.build_request(
        "add", [Record("a", {"email": " Mary@Example.com", "phone": "(650)555-1212"})], ctx
    )
    assert method == "POST" and "appsecret_proof=" in url
    assert body["payload"]["schema"] == ["EMAIL", "PHONE"]
    assert body["payload"]["data"] == [[h.sha256_hex("mary@example.com"), h.sha256_hex("16505551212")]]
    assert body["session"]["batch_seq"] == 1 and body["session"]["last_batch_flag"] is True
    again = dest.build_request(
        "add", [Record("a", {"email": " Mary@Example.com", "phone": "(650)555-1212"})], ctx
    )
    assert again[3]["session"]["session_id"] == body["session"]["session_id"], (
        "a retried batch keeps its session"
    )


def test_meta_emulator_enforces_rows_and_hash_format(
    meta: tuple[MetaEmulator, MetaCustomAudiences, SyncContext],
) -> None:
    em, dest, ctx = meta
    _, url, headers, _ = dest.build_request("add", [Record("a", {"email": "a@b.co"})], ctx)
    too_many = {"payload": {"schema": ["EMAIL"], "data": [[h.sha256_hex(str(i))] for i in range(10_001)]}}
    response = requests.post(url, json=too_many, headers=headers, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == 100
    plain = {
        "payload": {
            "schema": ["EMAIL", "PHONE"],
            "data": [["ann@example.com", ""], [h.sha256_hex("b@x.co"), ""]],
        }
    }
    body = requests.post(url, json=plain, headers=headers, timeout=10).json()
    assert body["num_invalid_entries"] == 1 and "ann@example.com" in body["invalid_entry_samples"]
    bad_key = {"payload": {"schema": ["EMAIL", "SHOE_SIZE"], "data": []}}
    assert requests.post(url, json=bad_key, headers=headers, timeout=10).status_code == 400


def test_meta_wrong_appsecret_proof_is_terminal(
    meta: tuple[MetaEmulator, MetaCustomAudiences, SyncContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    em, _, ctx = meta
    monkeypatch.setenv("T_META_SECRET", "not-the-secret")
    dest = MetaCustomAudiences(
        {
            "ad_account_id": "1234567890",
            "access_token": "T_META",
            "app_secret": "T_META_SECRET",
            "base_url": em.base_url,
        }
    )
    with pytest.raises(
        TerminalError, match="appsecret_proof"
    ):  # Graph says code 100; it is a configuration error
        dest.send_batch("add", [Record("a", {"email": "a@b.co"})], ctx)


@pytest.fixture
def google(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[GoogleAdsEmulator, GoogleAdsCustomerMatch, SyncContext]]:
    monkeypatch.setenv("T_G_TOKEN", "ya29.test")
    monkeypatch.setenv("T_G_DEV", "dev-token")
    with GoogleAdsEmulator() as em:
        dest = GoogleAdsCustomerMatch(
            {
                "customer_id": "1234567890",
                "access_token": "T_G_TOKEN",
                "developer_token": "T_G_DEV",
                "ad_personalization_consent": "GRANTED",
                "base_url": em.base_url,
            }
        )
        ctx = SyncContext("vip", "audience", "user_id")
        dest.prepare(ctx)
        yield em, dest, ctx


def test_google_consent_is_job_level_and_split_by_record(
    google: tuple[GoogleAdsEmulator, GoogleAdsCustomerMatch, SyncContext],
) -> None:
    em, dest, ctx = google
    batch = [
        Record("a", {"email": "a@x.co", "consent_ad_user_data": "granted"}),
        Record("b", {"email": "b@x.co", "consent_ad_user_data": "revoked"}),
        Record("c", {"email": "c@x.co", "consent_ad_user_data": True}),
    ]
    results = dest.send_batch("add", batch, ctx)
    assert all(r.ok for r in results)
    consents = sorted((j["consent"]["adUserData"], len(j["operations"])) for j in em.jobs.values())
    assert consents == [("DENIED", 1), ("GRANTED", 2)]
    assert all(j["consent"]["adPersonalization"] == "GRANTED" for j in em.jobs.values())
    assert all("consent" not in op["create"] for j in em.jobs.values() for op in j["operations"])
    assert all(j["status"] == "SUCCESS" for j in em.jobs.values())


def test_google_emulator_checks_proto_shape(
    google: tuple[GoogleAdsEmulator, GoogleAdsCustomerMatch, SyncContext],
) -> None:
    em, dest, ctx = google
    _, url, headers, _ = dest.create_job_request({}, ctx)
    job = requests.post(url, json=dest.create_job_request({}, ctx)[3], headers=headers, timeout=10).json()[
        "resourceName"
    ]
    add_url = f"{em.base_url}/v25/{job}:addOperations"
    typo = {"operations": [{"create": {"userIdentifiers": [{"hashedEmails": h.sha256_hex("a@x.co")}]}}]}
    response = requests.post(add_url, json=typo, headers=headers, timeout=10)
    assert response.status_code == 400 and "hashedEmails" in response.text
    both = {
        "operations": [
            {
                "create": {
                    "userIdentifiers": [
                        {"hashedEmail": h.sha256_hex("a"), "hashedPhoneNumber": h.sha256_hex("b")}
                    ]
                }
            }
        ]
    }
    assert "oneof" in requests.post(add_url, json=both, headers=headers, timeout=10).text
    many = {
        "operations": [
            {"create": {"userIdentifiers": [{"hashedEmail": h.sha256_hex(str(i))} for i in range(21)]}}
        ],
        "enablePartialFailure": True,
    }
    body = requests.post(add_url, json=many, headers=headers, timeout=10).json()
    assert body["partialFailureError"]["details"][0]["errors"][0]["errorCode"] == {
        "offlineUserDataJobError": "TOO_MANY_USER_IDENTIFIERS"
    }
    mixed = {"operations": [{"remove": {"userIdentifiers": [{"hashedEmail": h.sha256_hex("a")}]}}]}
    requests.post(
        add_url,
        json={"operations": [{"create": {"userIdentifiers": [{"hashedEmail": h.sha256_hex("b")}]}}]},
        headers=headers,
        timeout=10,
    )
    assert "CONFLICTING_OPERATION" in requests.post(add_url, json=mixed, headers=headers, timeout=10).text


def test_google_missing_list_is_terminal(
    google: tuple[GoogleAdsEmulator, GoogleAdsCustomerMatch, SyncContext],
) -> None:
    _, dest, _ = google
    ctx = SyncContext(
        "other", "audience", "user_id", state={"user_list": "customers/1234567890/userLists/404"}
    )
    with pytest.raises(TerminalError, match="INVALID_USER_LIST_ID"):
        dest.send_batch("add", [Record("a", {"email": "a@x.co"})], ctx)


@pytest.fixture
def hubspot(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HubSpotEmulator, HubSpotContacts]]:
    monkeypatch.setenv("T_HS", "pat-na1-test")
    with HubSpotEmulator() as em:
        yield em, HubSpotContacts({"access_token": "T_HS", "base_url": em.base_url})


def test_hubspot_duplicate_emails_reject_the_batch(hubspot: tuple[HubSpotEmulator, HubSpotContacts]) -> None:
    em, dest = hubspot
    ctx = SyncContext("crm", "upsert", "contact_id")
    with pytest.raises(BatchRejected, match="Duplicate IDs"):
        dest.send_batch(
            "upsert", [Record("a", {"email": "Ann@x.co"}), Record("b", {"email": "ann@x.co "})], ctx
        )
    assert em.emails() == set()


def test_hubspot_upsert_update_insert_and_mirror_removal(
    hubspot: tuple[HubSpotEmulator, HubSpotContacts],
) -> None:
    em, dest = hubspot
    ctx = SyncContext("crm", "mirror", "contact_id")
    assert all(
        r.ok
        for r in dest.send_batch(
            "upsert", [Record("a", {"email": "a@x.co", "firstname": "Ann", "vip": True})], ctx
        )
    )
    assert em.contact_by_email("a@x.co")["vip"] == "true"
    updated = dest.send_batch(
        "update",
        [Record("a", {"email": "a@x.co", "firstname": "Anne"}), Record("z", {"email": "z@x.co"})],
        ctx,
    )
    assert [r.ok for r in updated] == [True, False] and "OBJECT_NOT_FOUND" in (updated[1].reason or "")
    with pytest.raises(BatchRejected):  # batch create refuses a batch holding an existing contact
        dest.send_batch("insert", [Record("a", {"email": "a@x.co"}), Record("b", {"email": "b@x.co"})], ctx)
    assert all(r.ok for r in dest.send_batch("insert", [Record("b", {"email": "b@x.co"})], ctx))
    assert all(
        r.ok
        for r in dest.send_batch(
            "remove", [Record("a", {"email": "a@x.co"}), Record("q", {"email": "q@x.co"})], ctx
        )
    )
    assert em.emails() == {"b@x.co"}


def test_hubspot_emulator_validates_against_openapi(hubspot: tuple[HubSpotEmulator, HubSpotContacts]) -> None:
    em, _ = hubspot
    headers = {"Authorization": "Bearer pat-na1-test"}
    url = f"{em.base_url}/crm/v3/objects/contacts/batch/upsert"
    missing_properties = {"inputs": [{"id": "a@x.co", "idProperty": "email"}]}
    response = requests.post(url, json=missing_properties, headers=headers, timeout=10)
    assert response.status_code == 400 and "properties" in response.json()["message"]
    not_a_string = {"inputs": [{"id": "a@x.co", "idProperty": "email", "properties": {"vip": True}}]}
    assert requests.post(url, json=not_a_string, headers=headers, timeout=10).status_code == 400
    too_many = {"inputs": [{"id": f"{i}@x.co", "idProperty": "email", "properties": {}} for i in range(101)]}
    assert requests.post(url, json=too_many, headers=headers, timeout=10).status_code == 400


def test_klaviyo_requires_revision_header(monkeypatch: pytest.MonkeyPatch) -> None:
    from reverse_etl.emulators.klaviyo import KlaviyoEmulator

    monkeypatch.setenv("T_KL", "pk_test")
    with KlaviyoEmulator() as em:
        response = requests.get(
            f"{em.base_url}/api/lists", headers={"Authorization": "Klaviyo-API-Key pk_test"}, timeout=10
        )
        assert response.status_code == 400 and "revision" in response.text
        dest = KlaviyoProfiles({"api_key": "T_KL", "base_url": em.base_url})
        ctx = SyncContext("crm", "upsert", "user_id")
        results = dest.send_batch(
            "upsert", [Record("a", {"email": "a@x.co", "plan": "pro", "first_name": "Ann"})], ctx
        )
        assert results[0].ok
        assert em.profiles and next(iter(em.profiles.values()))["properties"] == {"plan": "pro"}


# -- Mailchimp -------------------------------------------------------------------------------------


@pytest.fixture
def mailchimp(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MailchimpEmulator, MailchimpMembers]]:
    monkeypatch.setenv("T_MC", "mc-test-key-us6")
    with MailchimpEmulator() as em:
        yield em, MailchimpMembers({"api_key": "T_MC", "list_id": "a1b2c3d4e5", "base_url": em.base_url})


def test_mailchimp_status_is_never_guessed(mailchimp: tuple[MailchimpEmulator, MailchimpMembers]) -> None:
    em, dest = mailchimp
    ctx = SyncContext("crm", "upsert", "user_id")
    results = dest.send_batch(
        "upsert",
        [
            Record("none", {"email": "none@x.co"}),
            Record(
                "yes", {"email": "Yes@X.co", "email_consent": "granted", "first_name": "Ann", "PLAN": "pro"}
            ),
            Record("no", {"email": "no@x.co", "email_consent": "revoked"}),
        ],
        ctx,
    )
    by_key = {r.key: r for r in results}
    assert not by_key["none"].ok and "default_status" in (by_key["none"].reason or "")
    assert by_key["yes"].ok and by_key["no"].ok
    member = em.member("a1b2c3d4e5", "yes@x.co")
    assert member is not None and member["status"] == "subscribed"
    assert member["id"] == h.mailchimp_subscriber_hash("Yes@X.co")
    assert member["merge_fields"] == {"FNAME": "Ann", "PLAN": "pro"}
    assert em.member("a1b2c3d4e5", "no@x.co")["status"] == "unsubscribed"  # type: ignore[index]


def test_mailchimp_unsubscribed_member_is_not_resubscribed(
    mailchimp: tuple[MailchimpEmulator, MailchimpMembers],
) -> None:
    em, dest = mailchimp
    ctx = SyncContext("crm", "upsert", "user_id")
    dest.send_batch("upsert", [Record("a", {"email": "a@x.co", "status": "unsubscribed"})], ctx)
    again = dest.send_batch(
        "upsert",
        [
            Record("a", {"email": "a@x.co", "status": "subscribed"}),
            Record("b", {"email": "b@x.co", "status": "subscribed"}),
        ],
        ctx,
    )
    assert [r.ok for r in again] == [False, True]
    assert "compliance state" in (again[0].reason or "")
    assert em.member("a1b2c3d4e5", "a@x.co")["status"] == "unsubscribed"  # type: ignore[index]


def test_mailchimp_data_centre_comes_from_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_MC", "0123456789abcdef-us21")
    dest = MailchimpMembers({"api_key": "T_MC", "list_id": "x"})
    assert dest.settings["base_url"] == "https://us21.api.mailchimp.com/3.0"
    monkeypatch.setenv("T_MC", "no-data-centre")
    with pytest.raises(ConfigError, match="data-centre suffix"):
        MailchimpMembers({"api_key": "T_MC", "list_id": "x"})
    monkeypatch.setenv("T_MC", "0123456789abcdef-us21")
    with pytest.raises(ConfigError, match="default_status"):
        MailchimpMembers({"api_key": "T_MC", "list_id": "x", "default_status": "opted_in"})


def test_mailchimp_more_than_ten_connections_is_throttled(
    mailchimp: tuple[MailchimpEmulator, MailchimpMembers],
) -> None:
    """Mailchimp limits simultaneous connections; the eleventh and later get 429 and no wait."""
    em, dest = mailchimp
    em.faults = FaultConfig(timeout_every=1, timeout_seconds=0.4)  # every request stays open a while
    ctx = SyncContext("crm", "upsert", "user_id")
    senders = [
        MailchimpMembers({"api_key": "T_MC", "list_id": "a1b2c3d4e5", "base_url": em.base_url})
        for _ in range(12)
    ]
    barrier = threading.Barrier(len(senders))

    def send(n: int) -> str:
        barrier.wait()
        try:
            senders[n].send_batch(
                "upsert", [Record(f"k{n}", {"email": f"p{n}@x.co", "status": "subscribed"})], ctx
            )
        except TransientError as exc:
            assert exc.retry_after is None and exc.http_status == 429
            return "throttled"
        return "ok"

    with ThreadPoolExecutor(len(senders)) as pool:
        outcomes = list(pool.map(send, range(len(senders))))
    assert outcomes.count("throttled") >= 2 and outcomes.count("ok") >= 1


def test_mailchimp_emulator_enforces_500_members(
    mailchimp: tuple[MailchimpEmulator, MailchimpMembers],
) -> None:
    em, dest = mailchimp
    ctx = SyncContext("crm", "upsert", "user_id")
    _, url, headers, _ = dest.build_request(
        "upsert", [Record("a", {"email": "a@x.co", "status": "subscribed"})], ctx
    )
    members = [{"email_address": f"{i}@x.co", "status": "subscribed"} for i in range(501)]
    response = requests.post(
        url, json={"members": members, "update_existing": True}, headers=headers, timeout=10
    )
    assert response.status_code == 400 and response.json()["title"] == "Invalid Resource"
    seg = requests.post(
        f"{url}/segments", json={"name": "s", "static_segment": []}, headers=headers, timeout=10
    )
    too_many = {"members_to_add": [f"{i}@x.co" for i in range(501)]}
    response = requests.post(f"{url}/segments/{seg.json()['id']}", json=too_many, headers=headers, timeout=10)
    assert response.status_code == 400 and "at most 500" in response.json()["detail"]


# -- Salesforce ------------------------------------------------------------------------------------


@pytest.fixture
def salesforce(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SalesforceEmulator, SalesforceUpsert]]:
    monkeypatch.setenv("T_SF", "00Dxx0000000001!AQ4AQ.test")
    with SalesforceEmulator() as em:
        yield (
            em,
            SalesforceUpsert(
                {"base_url": em.base_url, "access_token": "T_SF", "external_id_field": "Email_Key__c"}
            ),
        )


def test_salesforce_results_follow_request_order(
    salesforce: tuple[SalesforceEmulator, SalesforceUpsert],
) -> None:
    em, dest = salesforce
    ctx = SyncContext("crm", "upsert", "contact_id")
    batch = [
        Record("a", {"Email_Key__c": "a@x.co", "LastName": "Lee", "Phone": "1"}),
        Record("b", {"Email_Key__c": "b@x.co", "FirstName": "No last name"}),
        Record("c", {"Email_Key__c": "c@x.co", "LastName": "Ng", "Birthdate_Ignored": None}),
    ]
    with pytest.raises(BatchRejected, match="INVALID_FIELD"):  # an unknown column refuses the request
        dest.send_batch("upsert", batch, ctx)
    assert em.records["Contact"] == {}
    results = dest.send_batch(
        "upsert", batch[:2] + [Record("c", {"Email_Key__c": "c@x.co", "LastName": "Ng"})], ctx
    )
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].reason == "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]"
    # b was refused, so two records exist; upserting a by its external id (any case) updates it.
    dest.send_batch("upsert", [Record("a", {"Email_Key__c": "A@x.co", "LastName": "Lee-Smith"})], ctx)
    assert len(em.records["Contact"]) == 2
    assert em.record("Contact", "Email_Key__c", "a@x.co")["LastName"] == "Lee-Smith"  # type: ignore[index]


def test_salesforce_audience_field_and_removal_never_creates(
    salesforce: tuple[SalesforceEmulator, SalesforceUpsert],
) -> None:
    em, dest = salesforce
    ctx = SyncContext("VIP customers", "audience", "contact_id")
    dest.prepare(ctx)
    assert ctx.state["audience_field"] == "CDP_VIP_customers__c"
    assert "cdp_vip_customers__c" in em.schema["Contact"]
    again = SyncContext("VIP customers", "audience", "contact_id")
    before = len(em.requests)
    dest.prepare(again)
    assert not any(r.path.endswith("CustomField") for r in em.requests[before:]), "the field is created once"
    quoted = "o'brien@x.co"
    dest.send_batch("add", [Record("o", {"Email_Key__c": quoted, "LastName": "O'Brien"})], ctx)
    assert em.with_field("Contact", "CDP_VIP_customers__c") == {quoted}
    results = dest.send_batch(
        "remove",
        [Record("o", {"Email_Key__c": quoted}), Record("ghost", {"Email_Key__c": "ghost@x.co"})],
        ctx,
    )
    assert all(r.ok for r in results)
    assert em.with_field("Contact", "CDP_VIP_customers__c") == set()
    assert em.record("Contact", "Email_Key__c", "ghost@x.co") is None


def test_salesforce_throttle_and_check(salesforce: tuple[SalesforceEmulator, SalesforceUpsert]) -> None:
    em, dest = salesforce
    assert dest.check().ok
    wrong = SalesforceUpsert(
        {"base_url": em.base_url, "access_token": "T_SF", "external_id_field": "LastName"}
    )
    assert not wrong.check().ok
    em.faults = FaultConfig(throttle_every=1)
    with pytest.raises(TransientError, match=r"REQUEST_LIMIT_EXCEEDED.*api-usage=\d+/15000") as caught:
        dest.send_batch(
            "upsert",
            [Record("a", {"Email_Key__c": "a@x.co", "LastName": "Lee"})],
            SyncContext("s", "upsert", "k"),
        )
    assert caught.value.http_status == 403
    with pytest.raises(ConfigError, match="audience_field"):
        SalesforceUpsert(
            {
                "base_url": em.base_url,
                "access_token": "T_SF",
                "external_id_field": "X__c",
                "audience_field": "In__VIP__c",
            }
        )


# -- TikTok ----------------------------------------------------------------------------------------


@pytest.fixture
def tiktok(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TikTokEmulator, TikTokAudiences, SyncContext]]:
    monkeypatch.setenv("T_TT", "tt-test-token")
    with TikTokEmulator() as em:
        dest = TikTokAudiences(
            {"advertiser_id": "7012345678901234567", "access_token": "T_TT", "base_url": em.base_url}
        )
        ctx = SyncContext("vip", "audience", "user_id")
        dest.prepare(ctx)
        yield em, dest, ctx


def test_tiktok_rows_align_with_id_schema(
    tiktok: tuple[TikTokEmulator, TikTokAudiences, SyncContext],
) -> None:
    em, dest, ctx = tiktok
    batch = [Record("a", {"email": " Ann+News@Example.com"}), Record("b", {"phone": "(657)777-0000"})]
    _, url, headers, body = dest.build_request("add", batch, ctx)
    assert headers["Access-Token"] == "tt-test-token" and url.endswith("/segment/mapping/")
    assert body["id_schema"] == ["EMAIL_SHA256", "PHONE_SHA256"]
    audience = ctx.state["audience_id"]
    assert body["batch_data"] == [
        [{"id": h.sha256_hex("ann@example.com"), "audience_ids": [audience]}, {}],
        [{}, {"id": h.sha256_hex("16577770000"), "audience_ids": [audience]}],
    ]
    assert all(r.ok for r in dest.send_batch("add", batch, ctx))
    assert em.members(audience, "PHONE_SHA256") == {h.sha256_hex("16577770000")}


def test_tiktok_code_outranks_http_status(
    tiktok: tuple[TikTokEmulator, TikTokAudiences, SyncContext],
) -> None:
    em, dest, ctx = tiktok
    em.faults = FaultConfig(throttle_every=1)
    with pytest.raises(TransientError, match="code 40100") as caught:
        dest.send_batch("add", [Record("a", {"email": "a@x.co"})], ctx)
    assert caught.value.http_status == 200 and caught.value.retry_after == 1.0
    em.faults = FaultConfig(auth_failure=True)
    with pytest.raises(TerminalError, match="40105"):
        dest.send_batch("add", [Record("a", {"email": "a@x.co"})], ctx)


def test_tiktok_emulator_validates_against_the_spec(
    tiktok: tuple[TikTokEmulator, TikTokAudiences, SyncContext],
) -> None:
    em, dest, ctx = tiktok
    headers = {"Access-Token": "tt-test-token"}
    listing = requests.get(
        f"{em.base_url}/dmp/custom_audience/list/",
        params={"advertiser_id": "7012345678901234567", "page_size": 101},
        headers=headers,
        timeout=10,
    ).json()
    assert listing["code"] == 40001 and "page_size" in listing["message"]
    missing = requests.get(f"{em.base_url}/dmp/custom_audience/list/", headers=headers, timeout=10).json()
    assert missing["code"] == 40002 and "advertiser_id" in missing["message"]
    _, url, headers, body = dest.build_request("add", [Record("a", {"email": "a@x.co"})], ctx)
    body["batch_data"][0][0]["id"] = "a@x.co"  # plain text instead of a hash
    assert requests.post(url, json=body, headers=headers, timeout=10).json()["code"] == 40001


# -- LinkedIn --------------------------------------------------------------------------------------


@pytest.fixture
def linkedin(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[LinkedInEmulator, LinkedInAudiences, SyncContext]]:
    monkeypatch.setenv("T_LI", "li-test-token")
    with LinkedInEmulator() as em:
        dest = LinkedInAudiences(
            {
                "ad_account_id": "512345678",
                "access_token": "T_LI",
                "create_wait_seconds": 0,
                "base_url": em.base_url,
            }
        )
        ctx = SyncContext("b2b", "audience", "user_id")
        dest.prepare(ctx)
        yield em, dest, ctx


def test_linkedin_per_element_results_in_order(
    linkedin: tuple[LinkedInEmulator, LinkedInAudiences, SyncContext],
) -> None:
    em, dest, ctx = linkedin
    bad = h.sha256_hex("bad@x.co")
    em.faults = FaultConfig(reject_values=(bad,))
    batch = [
        Record(
            "names", {"first_name": "Ann", "last_name": "Lee", "company": "Acme", "country": "United States"}
        ),
        Record("aid", {"google_aid": "38400000-8CF0-11BD-B23E-10B96E40000D"}),
        Record("bad", {"email": "bad@x.co"}),
    ]
    _, _, headers, body = dest.build_request("add", batch, ctx)
    assert headers["X-RestLi-Method"] == "BATCH_CREATE" and headers["LinkedIn-Version"] == "202604"
    assert body["elements"][0] == {
        "action": "ADD",
        "userIds": [],
        "firstName": "Ann",
        "lastName": "Lee",
        "company": "Acme",
        "country": "US",
    }
    results = dest.send_batch("add", batch, ctx)
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].http_status == 400 and "not allowed" in (results[2].reason or "")
    assert em.members(ctx.state["segment_id"], "GOOGLE_AID") == {"38400000-8cf0-11bd-b23e-10b96e40000d"}


def test_linkedin_versioning_and_reuse(
    linkedin: tuple[LinkedInEmulator, LinkedInAudiences, SyncContext],
) -> None:
    em, dest, ctx = linkedin
    response = requests.get(
        f"{em.base_url}/dmpSegments", headers={"Authorization": "Bearer li-test-token"}, timeout=10
    )
    assert response.status_code == 400 and response.json()["code"] == "VERSION_MISSING"
    old = LinkedInAudiences(
        {
            "ad_account_id": "512345678",
            "access_token": "T_LI",
            "api_version": "202301",
            "base_url": em.base_url,
        }
    )
    with pytest.raises(TerminalError, match="api_version"):
        old.send_batch("add", [Record("a", {"email": "a@x.co"})], ctx)
    again = SyncContext("b2b", "audience", "user_id")
    dest.prepare(again)
    assert again.state["segment_id"] == ctx.state["segment_id"] and len(em.segments) == 1


# -- Iterable --------------------------------------------------------------------------------------


def test_iterable_user_id_project_and_failed_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_IT", "it-test-key")
    with IterableEmulator(identifier="userId", faults=FaultConfig(reject_values=("u2",))) as em:
        dest = IterableUsers({"api_key": "T_IT", "identifier": "userId", "base_url": em.base_url})
        ctx = SyncContext("crm", "upsert", "user_id")
        results = dest.send_batch(
            "upsert",
            [
                Record(
                    "1", {"user_id": "u1", "email": "A@x.co", "signed_up_at": dt.datetime(2024, 5, 1, 12, 0)}
                ),
                Record("2", {"user_id": "u2"}),
                Record("3", {"email": "only-email@x.co"}),
            ],
            ctx,
        )
        by_key = {r.key: r for r in results}
        assert by_key["1"].ok and not by_key["2"].ok and not by_key["3"].ok
        assert by_key["2"].reason == "invalidDataUserIds" and "user_id" in (by_key["3"].reason or "")
        assert em.user("u1")["dataFields"] == {"signed_up_at": "2024-05-01 12:00:00 +0000", "email": "a@x.co"}  # type: ignore[index]
    with pytest.raises(ConfigError, match="email or userId"):
        IterableUsers({"api_key": "T_IT", "identifier": "phone"})


def test_iterable_unsubscribe_of_non_member_is_fine_and_4mb_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_IT", "it-test-key")
    with IterableEmulator() as em:
        dest = IterableUsers({"api_key": "T_IT", "base_url": em.base_url})
        ctx = SyncContext("vip", "audience", "user_id")
        dest.prepare(ctx)
        dest.send_batch("add", [Record("a", {"email": "a@x.co"})], ctx)
        results = dest.send_batch(
            "remove", [Record("a", {"email": "a@x.co"}), Record("z", {"email": "z@x.co"})], ctx
        )
        assert all(r.ok for r in results) and em.list_members(ctx.state["list_id"]) == set()
        big = "x" * 2_100_000
        before = len(em.requests)
        with pytest.raises(BatchRejected, match="4 MB"):
            dest.send_batch("upsert", [Record(k, {"email": f"{k}@x.co", "notes": big}) for k in "ab"], ctx)
        assert len(em.requests) == before, "an oversized batch is split before it is sent"


# -- Customer.io -----------------------------------------------------------------------------------


def test_customerio_per_entry_errors_and_timestamps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_CIO", "cio-track-key")
    with CustomerIoEmulator() as em:
        dest = CustomerIoPeople({"site_id": "site-123", "api_key": "T_CIO", "base_url": em.base_url})
        ctx = SyncContext("crm", "upsert", "user_id")
        results = dest.send_batch(
            "upsert",
            [
                Record(
                    "1",
                    {"user_id": "u1", "email": "A@x.co", "created_at": dt.date(2024, 1, 2), "plan": "pro"},
                ),
                Record("2", {"user_id": "u2", "bio": "y" * 2000}),
                Record("3", {"user_id": "u3", "blob": "z" * 40_000}),
            ],
            ctx,
        )
        by_key = {r.key: r for r in results}
        assert by_key["1"].ok and not by_key["2"].ok and not by_key["3"].ok
        assert "too_long (bio)" in (by_key["2"].reason or "") and "32000" in (by_key["3"].reason or "")
        person = em.person("id", "u1")
        assert person is not None and person["attributes"] == {
            "created_at": 1704153600,
            "plan": "pro",
            "email": "a@x.co",
        }


def test_customerio_audience_needs_a_segment_or_app_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_CIO", "cio-track-key")
    with CustomerIoEmulator() as em:
        dest = CustomerIoPeople(
            {"site_id": "site-123", "api_key": "T_CIO", "identifier": "email", "base_url": em.base_url}
        )
        with pytest.raises(ConfigError, match="app_api_key"):
            dest.prepare(SyncContext("vip", "audience", "user_id"))
        em.segments[7] = {"name": "VIP", "type": "manual", "description": "", "members": set()}
        by_email = CustomerIoPeople(
            {
                "site_id": "site-123",
                "api_key": "T_CIO",
                "identifier": "email",
                "segment_id": 7,
                "base_url": em.base_url,
            }
        )
        ctx = SyncContext("vip", "audience", "user_id")
        by_email.prepare(ctx)
        assert all(r.ok for r in by_email.send_batch("add", [Record("a", {"email": "A@x.co"})], ctx))
        assert em.requests[-1].query["id_type"] == ["email"]
        assert em.segment_members(7, "email") == {"a@x.co"}


# -- Slack -----------------------------------------------------------------------------------------

SLACK_URL = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SlackEmulator, SlackWebhook]]:
    monkeypatch.setenv("T_SLACK", SLACK_URL)
    with SlackEmulator() as em:
        yield (
            em,
            SlackWebhook(
                {"webhook_url": "T_SLACK", "fields": ["plan"], "title": "VIP", "base_url": em.base_url}
            ),
        )


def test_slack_digest_shape(slack: tuple[SlackEmulator, SlackWebhook]) -> None:
    em, dest = slack
    ctx = SyncContext("vip", "audience", "user_id")
    assert dest.check().ok and em.messages() == [], "check posts nothing"
    batch = [Record(f"k{i}", {"name": f"Ann <{i}> & co", "plan": "pro" * 50}) for i in range(40)]
    assert all(r.ok for r in dest.send_batch("add", batch, ctx))
    (message,) = em.messages()
    assert message["blocks"][0]["text"]["text"] == "VIP: 40 entered"
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert len(sections) > 1 and all(len(s) <= 3000 for s in sections)
    assert sections[0].startswith("• *Ann &lt;0&gt; &amp; co* — plan: pro")
    dest.post_text("sync vip failed: boom")
    assert em.messages()[-1] == {"text": "sync vip failed: boom"}


def test_slack_archived_channel_is_terminal_and_url_never_leaks(
    slack: tuple[SlackEmulator, SlackWebhook], monkeypatch: pytest.MonkeyPatch
) -> None:
    em, dest = slack
    ctx = SyncContext("vip", "audience", "user_id")
    em.archive()
    with pytest.raises(TerminalError, match="channel_is_archived"):
        dest.send_batch("add", [Record("a", {"email": "a@x.co"})], ctx)
    result = dest.check()
    assert not result.ok and "410" in result.message
    assert "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX" in dest.secret_values()
    closed = SlackWebhook({"webhook_url": "T_SLACK", "base_url": "http://127.0.0.1:9"})
    with pytest.raises(TransientError) as caught:
        closed.send_batch("add", [Record("a", {"email": "a@x.co"})], ctx)
    assert "XXXXXXXX" not in str(caught.value) and "B00000000" not in str(caught.value)
    monkeypatch.setenv("T_NOT_URL", "xoxb-123")
    with pytest.raises(ConfigError, match="does not hold a URL"):
        SlackWebhook({"webhook_url": "T_NOT_URL"})
