"""Identifier normalisation and hashing, one place for every destination.

Ad platforms match people on hashes, so a hash of ``" Ann@X.com"`` and one of ``"ann@x.com"`` are two
different people to them: every vendor publishes a normalisation rule to apply *before* hashing. The
rules differ in small ways (Google wants phones in E.164 with ``+``, Meta and TikTok want digits only;
Meta strips punctuation from names, Google only trims and lower-cases), so each rule is a named
function here and destinations pick the ones their vendor documents. Every normaliser returns ``None``
for a value that cannot be an identifier, so a destination can say why a record was skipped.

The vendor examples in ``tests/destinations/hashing_test_vectors.json`` are tests of this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from typing import Any

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")

# Calling codes and national significant number lengths for the countries whose phone numbers are
# written without a country code often enough to matter. A national number of a listed length gets
# the calling code; anything else is taken to carry its country code already.
_CALLING_CODES: dict[str, tuple[str, tuple[int, ...]]] = {
    "us": ("1", (10,)),
    "ca": ("1", (10,)),
    "gb": ("44", (10,)),
    "ie": ("353", (9,)),
    "de": ("49", (10, 11)),
    "fr": ("33", (9,)),
    "es": ("34", (9,)),
    "it": ("39", (9, 10)),
    "nl": ("31", (9,)),
    "be": ("32", (8, 9)),
    "se": ("46", (9,)),
    "au": ("61", (9,)),
    "nz": ("64", (8, 9)),
    "in": ("91", (10,)),
    "br": ("55", (10, 11)),
    "mx": ("52", (10,)),
    "jp": ("81", (9, 10)),
}

# Country names seen in CRM exports, mapped to ISO-3166-1 alpha-2. Two-letter codes pass through.
_COUNTRY_NAMES: dict[str, str] = {
    "united states": "us",
    "united states of america": "us",
    "usa": "us",
    "u.s.": "us",
    "u.s.a.": "us",
    "america": "us",
    "united kingdom": "gb",
    "uk": "gb",
    "great britain": "gb",
    "england": "gb",
    "scotland": "gb",
    "wales": "gb",
    "ireland": "ie",
    "germany": "de",
    "deutschland": "de",
    "france": "fr",
    "spain": "es",
    "españa": "es",
    "italy": "it",
    "italia": "it",
    "netherlands": "nl",
    "the netherlands": "nl",
    "holland": "nl",
    "belgium": "be",
    "sweden": "se",
    "canada": "ca",
    "australia": "au",
    "new zealand": "nz",
    "india": "in",
    "brazil": "br",
    "brasil": "br",
    "mexico": "mx",
    "méxico": "mx",
    "japan": "jp",
}


def _text(value: Any) -> str | None:
    """Strings trimmed; None, NaN and blanks become None."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from a dataframe
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


# -- hashes -----------------------------------------------------------------------------------------


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def sha512_hex(value: str) -> str:
    return hashlib.sha512(value.encode("utf-8")).hexdigest()


def md5_hex(value: str) -> str:
    return hashlib.md5(value.encode("utf-8")).hexdigest()


def is_sha256_hex(value: Any) -> bool:
    """True for 64 lowercase hex characters: what Meta, Google and TikTok expect of a hashed value."""
    return isinstance(value, str) and bool(_HEX64_RE.match(value))


def hash_if_needed(value: str | None) -> str | None:
    """Hash a normalised value; a value that is already a SHA-256 hex digest passes through, so a
    warehouse that stores hashes (a clean room export) can feed the same destination."""
    if value is None:
        return None
    return value if is_sha256_hex(value) else sha256_hex(value)


# -- email ------------------------------------------------------------------------------------------


def normalise_email(value: Any) -> str | None:
    """Trim and lower-case (Meta, Google, LinkedIn, Mailchimp); None when not an address."""
    text = _text(value)
    if text is None:
        return None
    text = text.lower()
    return text if _EMAIL_RE.match(text) else None


def normalise_email_tiktok(value: Any) -> str | None:
    """TikTok's customer-file rule: as above, and drop a ``+tag`` from the local part."""
    email = normalise_email(value)
    if email is None:
        return None
    local, domain = email.rsplit("@", 1)
    local = local.split("+", 1)[0]
    return f"{local}@{domain}" if local else None


def mailchimp_subscriber_hash(email: Any) -> str | None:
    """Mailchimp's member id: MD5 of the lower-cased address."""
    normalised = normalise_email(email)
    return md5_hex(normalised) if normalised else None


# -- phone ------------------------------------------------------------------------------------------


def normalise_phone_e164(value: Any, default_country: str = "us") -> str | None:
    """E.164 with a leading ``+`` (Google, Klaviyo, Braze). A number written with ``+`` or ``00`` keeps
    its country code; a national number (trunk ``0`` dropped) gets the default country's code when its
    length fits that country, else it is taken to carry a country code already."""
    text = _text(value)
    if text is None:
        return None
    text = re.split(r"\s*(?:ext\.?|x|#)\s*\d+$", text, flags=re.IGNORECASE)[0]  # drop an extension
    digits = re.sub(r"\D", "", text)
    if not digits:
        return None
    if text.startswith("+"):
        full = digits
    elif digits.startswith("00"):
        full = digits[2:]
    else:
        national = digits.lstrip("0")
        code, lengths = _CALLING_CODES.get((default_country or "us").lower(), ("", ()))
        if code == "1" and len(national) == 11 and national.startswith("1"):
            full = national
        elif code and len(national) in lengths:
            full = code + national
        else:
            full = national
    full = full.lstrip("0")
    if not 8 <= len(full) <= 15 or len(set(full)) == 1:
        return None
    return "+" + full


def normalise_phone_digits(value: Any, default_country: str = "us") -> str | None:
    """Digits with country code and no ``+`` (Meta, TikTok): ``(650)555-1212`` -> ``16505551212``."""
    e164 = normalise_phone_e164(value, default_country)
    return e164[1:] if e164 else None


# -- names, places, dates ---------------------------------------------------------------------------


def normalise_name_strict(value: Any) -> str | None:
    """Meta FN/LN/CT/ST: lower-case letters only (any script), no punctuation, digits or spaces."""
    text = _text(value)
    if text is None:
        return None
    letters = "".join(ch for ch in text.lower() if ch.isalpha())
    return letters or None


def normalise_name_trim(value: Any) -> str | None:
    """Google names: trim and lower-case, nothing else."""
    text = _text(value)
    return text.lower() if text else None


def normalise_country(value: Any) -> str | None:
    """ISO-3166-1 alpha-2, lower-case: ``United States`` -> ``us``."""
    text = _text(value)
    if text is None:
        return None
    key = " ".join(text.lower().split())
    if key in _COUNTRY_NAMES:
        return _COUNTRY_NAMES[key]
    letters = re.sub(r"[^a-z]", "", key)
    return letters if len(letters) == 2 else None


def normalise_zip(value: Any, country: str | None = None) -> str | None:
    """Lower-case, no spaces; a US ZIP+4 keeps its first five digits."""
    text = _text(value)
    if text is None:
        return None
    text = re.sub(r"\s+", "", text.lower())
    if (country or "").lower() == "us" or re.fullmatch(r"\d{5}-\d{4}", text):
        text = text.split("-", 1)[0][:5]
    text = text.replace("-", "")
    return text or None


def normalise_gender(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    first = text.lower()[0]
    return first if first in ("m", "f") else None


_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%d.%m.%Y", "%Y/%m/%d")


def parse_date(value: Any) -> dt.date | None:
    """Dates as warehouses and CRMs write them; US ``M/D/YYYY`` is read month-first."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = _text(value)
    if text is None:
        return None
    text = text[:10] if re.match(r"\d{4}-\d{2}-\d{2}[T ]", text) else text
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def normalise_dob(value: Any) -> str | None:
    """``YYYYMMDD`` (Meta Conversions API ``db``): ``2/16/1997`` -> ``19970216``."""
    date = parse_date(value)
    return date.strftime("%Y%m%d") if date else None


def dob_parts(value: Any) -> tuple[str, str, str] | None:
    """Meta Custom Audience DOBY/DOBM/DOBD: ``YYYY``, zero-padded ``MM`` and ``DD``."""
    date = parse_date(value)
    if date is None:
        return None
    return f"{date.year:04d}", f"{date.month:02d}", f"{date.day:02d}"


def truthy(value: Any) -> bool | None:
    """Read a consent or flag column: granted/true/yes/1 -> True, revoked/denied/false/no/0 -> False."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("granted", "true", "t", "yes", "y", "1", "opted_in", "subscribed"):
        return True
    if text in ("revoked", "denied", "false", "f", "no", "n", "0", "opted_out", "unsubscribed"):
        return False
    return None
