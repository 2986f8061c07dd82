"""Vendor-specific behaviour the shared contract suite does not reach."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from reverse_etl.destinations import hashing as h
from reverse_etl.destinations.base import BatchRejected, Record, SyncContext, TerminalError
from reverse_etl.destinations.google_ads import GoogleAdsCustomerMatch
from reverse_etl.destinations.hubspot import HubSpotContacts
from reverse_etl.destinations.klaviyo import KlaviyoProfiles
from reverse_etl.destinations.meta import MetaCustomAudiences
from reverse_etl.emulators.google_ads import GoogleAdsEmulator
from reverse_etl.emulators.hubspot import HubSpotEmulator
from reverse_etl.emulators.meta import MetaEmulator


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
