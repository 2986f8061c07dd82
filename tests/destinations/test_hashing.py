"""Every vendor-published normalisation and hash example is a test of reverse_etl.destinations.hashing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reverse_etl.destinations import hashing

VECTORS = json.loads((Path(__file__).parent / "hashing_test_vectors.json").read_text())

META_NORMALISERS = {
    "EMAIL": hashing.normalise_email,
    "PHONE": hashing.normalise_phone_digits,
    "FN": hashing.normalise_name_strict,
    "LN": hashing.normalise_name_strict,
    "DOB (CAPI db)": hashing.normalise_dob,
    "COUNTRY": hashing.normalise_country,
}


@pytest.mark.parametrize(
    "vector", VECTORS["meta_custom_audiences"], ids=lambda v: f"{v['field']}:{v['input']}"
)
def test_meta_vectors(vector: dict[str, str]) -> None:
    normalised = META_NORMALISERS[vector["field"]](vector["input"])
    assert normalised == vector["normalized"]
    assert hashing.sha256_hex(normalised) == vector["sha256"]
    assert hashing.hash_if_needed(normalised) == vector["sha256"]


@pytest.mark.parametrize("vector", VECTORS["tiktok_phone_normalization"], ids=lambda v: v["input"])
def test_tiktok_phone_vectors(vector: dict[str, str]) -> None:
    assert hashing.normalise_phone_digits(vector["input"]) == vector["normalized"]


@pytest.mark.parametrize("vector", VECTORS["google_ads_customer_match"], ids=lambda v: v["field"])
def test_google_vectors(vector: dict[str, str]) -> None:
    normalise = {"phone": hashing.normalise_phone_e164, "email": hashing.normalise_email}[vector["field"]]
    assert normalise(vector["input"]) == vector["normalized_before_hash"]


@pytest.mark.parametrize("vector", VECTORS["mailchimp_subscriber_hash"], ids=lambda v: v["email"])
def test_mailchimp_vectors(vector: dict[str, str]) -> None:
    assert hashing.mailchimp_subscriber_hash(vector["email"]) == vector["md5_of_lowercase"]


def test_every_vector_group_is_covered() -> None:
    """A new group in the vectors file must get a test here."""
    assert set(VECTORS) - {"_note"} == {
        "meta_custom_audiences",
        "tiktok_phone_normalization",
        "google_ads_customer_match",
        "mailchimp_subscriber_hash",
    }


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("+44 20 7946 0958", "us", "+442079460958"),
        ("0044 20 7946 0958", "us", "+442079460958"),
        ("020 7946 0958", "gb", "+442079460958"),
        ("(415) 555-0100", "us", "+14155550100"),
        ("1-415-555-0100", "us", "+14155550100"),
        ("415.555.0100 ext 12", "us", "+14155550100"),
        ("0000", "us", None),
        ("-1", "us", None),
        ("null", "us", None),
        ("", "us", None),
        (None, "us", None),
        ("1111111111", "us", None),
    ],
)
def test_phone_e164(raw: str | None, country: str, e164: str | None) -> None:
    assert hashing.normalise_phone_e164(raw, country) == e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Ann@Example.COM ", "ann@example.com"),
        ("null", None),
        ("undefined", None),
        ("", None),
        ("a@b", None),
    ],
)
def test_email(raw: str, expected: str | None) -> None:
    assert hashing.normalise_email(raw) == expected


def test_tiktok_email_drops_plus_tag() -> None:
    assert hashing.normalise_email_tiktok("Ann+news@Example.com") == "ann@example.com"
    assert hashing.normalise_email_tiktok("+x@example.com") is None


def test_zip_and_country_and_names() -> None:
    assert hashing.normalise_zip("94110-1234", "us") == "94110"
    assert hashing.normalise_zip("SW1A 1AA", "gb") == "sw1a1aa"
    assert hashing.normalise_country("Deutschland") == "de"
    assert hashing.normalise_country("GB") == "gb"
    assert hashing.normalise_country("Atlantis") is None
    assert hashing.normalise_name_strict("O'Brien-Smith") == "obriensmith"
    assert hashing.normalise_name_trim("  O'Brien ") == "o'brien"
    assert hashing.dob_parts("1997-02-16") == ("1997", "02", "16")


def test_already_hashed_values_pass_through() -> None:
    digest = hashing.sha256_hex("ann@example.com")
    assert hashing.hash_if_needed(digest) == digest
    assert hashing.is_sha256_hex(digest)
    assert not hashing.is_sha256_hex(digest.upper())
