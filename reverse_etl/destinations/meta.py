"""Meta (Facebook) Custom Audiences, Marketing API: customer-file audiences fed from a segment.

API: ``POST /act_{ad_account_id}/customaudiences`` creates the audience; ``POST /{audience_id}/users``
adds and ``DELETE /{audience_id}/users`` removes, with ``{"payload": {"schema", "data"}, "session"}``.
Batch limit: 10,000 rows per request. Rate limit: business-use-case limits per ad account per rolling
hour; a throttled call answers HTTP 400 (not 429) with error code 4, 17, 613 or 80003 and says in the
``X-Business-Use-Case-Usage`` header how many minutes until access returns.

Every identifier except EXTERN_ID is normalised per Meta's table and SHA-256 hashed here; Meta never
sees a plain email. Meta does not report errors per row: it returns ``num_invalid_entries`` and up to
100 ``invalid_entry_samples``, which are matched back to the records that carried those values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import requests

from reverse_etl.destinations import hashing
from reverse_etl.destinations.base import (
    BatchRejected,
    CheckResult,
    Destination,
    Limits,
    PlannedRequest,
    Record,
    RecordResult,
    SettingSpec,
    SyncContext,
    TerminalError,
    TransientError,
)

DEFAULT_BASE_URL = "https://graph.facebook.com/v23.0"

# Column order of the multi-key schema; a batch uses the columns its records carry, in this order.
SCHEMA_ORDER = (
    "EXTERN_ID",
    "EMAIL",
    "PHONE",
    "FN",
    "LN",
    "GEN",
    "DOBY",
    "DOBM",
    "DOBD",
    "CT",
    "ST",
    "ZIP",
    "COUNTRY",
)
UNHASHED_KEYS = frozenset({"EXTERN_ID"})
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80003, 80004})
AUTH_CODES = frozenset({190, 102})
PERMISSION_CODES = frozenset({10, 200, 294})
OPERATION_METHOD = {"add": "POST", "upsert": "POST", "remove": "DELETE"}


def graph_error(response: requests.Response) -> dict[str, Any]:
    """The Graph API error envelope, or an empty dict when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def regain_access_seconds(response: requests.Response) -> float | None:
    """Longest ``estimated_time_to_regain_access`` (minutes) in the usage headers, in seconds."""
    waits: list[float] = []
    raw = response.headers.get("X-Business-Use-Case-Usage")
    if raw:
        try:
            usage = json.loads(raw)
        except ValueError:
            usage = {}
        for entries in usage.values() if isinstance(usage, dict) else []:
            for entry in entries if isinstance(entries, list) else []:
                minutes = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
                if isinstance(minutes, (int, float)):
                    waits.append(float(minutes) * 60.0)
    return max(waits) if waits else None


class MetaCustomAudiences(Destination):
    name = "meta"
    title = "Meta Custom Audiences"
    modes = ("audience", "mirror")
    # Customer lists need the person's consent to ad personalisation and to ad use of their data.
    consent_purposes = ("ads_personalization", "ad_user_data")
    limits = Limits(max_batch_size=10_000, requests_per_second=2.0, max_concurrency=1)
    identifier_fields = (
        "email",
        "phone",
        "first_name",
        "last_name",
        "gender",
        "date_of_birth",
        "city",
        "state",
        "postal_code",
        "country",
        "external_id",
    )
    settings_spec = (
        SettingSpec("ad_account_id", help="ad account id, with or without the act_ prefix"),
        SettingSpec(
            "access_token", secret=True, help="env var holding a system-user token with ads_management"
        ),
        SettingSpec(
            "app_secret", required=False, secret=True, help="env var holding the app secret (appsecret_proof)"
        ),
        SettingSpec("audience_id", required=False, help="existing custom audience id; created when omitted"),
        SettingSpec(
            "audience_name",
            required=False,
            help="name of the audience to find or create (default: sync name)",
        ),
        SettingSpec(
            "customer_file_source",
            required=False,
            default="USER_PROVIDED_ONLY",
            help="where the data came from",
        ),
        SettingSpec(
            "default_phone_country", required=False, default="us", help="country of national phone numbers"
        ),
        SettingSpec("base_url", required=False, default=DEFAULT_BASE_URL, help="Graph API root with version"),
    )

    # -- identifiers -----------------------------------------------------------------------------

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        if any(key in fields for key in SCHEMA_ORDER):  # already in Meta's keys
            return dict(fields), None
        country = hashing.normalise_country(fields.get("country"))
        plain: dict[str, str | None] = {
            "EMAIL": hashing.normalise_email(fields.get("email")),
            "PHONE": hashing.normalise_phone_digits(
                fields.get("phone"), country or self.settings["default_phone_country"]
            ),
            "FN": hashing.normalise_name_strict(fields.get("first_name")),
            "LN": hashing.normalise_name_strict(fields.get("last_name")),
            "GEN": hashing.normalise_gender(fields.get("gender")),
            "CT": hashing.normalise_name_strict(fields.get("city")),
            "ST": hashing.normalise_name_strict(fields.get("state")),
            "ZIP": hashing.normalise_zip(fields.get("postal_code") or fields.get("zip"), country),
            "COUNTRY": country,
        }
        dob = hashing.dob_parts(fields.get("date_of_birth"))
        if dob:
            plain["DOBY"], plain["DOBM"], plain["DOBD"] = dob
        out = {key: hashing.hash_if_needed(value) for key, value in plain.items() if value}
        external = fields.get("external_id")
        if external not in (None, ""):
            out["EXTERN_ID"] = str(external)
        if not any(key in out for key in ("EMAIL", "PHONE", "EXTERN_ID")):
            return None, "no valid email, phone or external_id"
        return out, None

    def match_keys(self, fields: Mapping[str, Any]) -> frozenset[str]:
        """Meta matches people on email, phone and external id; names and places only refine that."""
        return frozenset(f"{key}:{fields[key]}" for key in ("EMAIL", "PHONE", "EXTERN_ID") if fields.get(key))

    def _rows(
        self, records: Sequence[Record]
    ) -> tuple[list[Record], list[dict[str, Any]], list[RecordResult]]:
        kept: list[Record] = []
        rows: list[dict[str, Any]] = []
        rejected: list[RecordResult] = []
        for record in records:
            fields, reason = self.normalise(record.fields)
            if fields is None:
                rejected.append(RecordResult(record.key, ok=False, reason=reason))
                continue
            kept.append(record)
            rows.append(fields)
        return kept, rows, rejected

    # -- requests --------------------------------------------------------------------------------

    @property
    def _base(self) -> str:
        return str(self.settings["base_url"]).rstrip("/")

    @property
    def _account(self) -> str:
        account = str(self.settings["ad_account_id"])
        return account if account.startswith("act_") else f"act_{account}"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.settings['access_token']}",
            "Content-Type": "application/json",
        }

    def _url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        params = dict(query or {})
        if self.settings.get("app_secret"):
            params["appsecret_proof"] = hmac.new(
                str(self.settings["app_secret"]).encode(),
                str(self.settings["access_token"]).encode(),
                hashlib.sha256,
            ).hexdigest()
        suffix = f"?{urlencode(params)}" if params else ""
        return f"{self._base}/{path.lstrip('/')}{suffix}"

    def _audience_id(self, context: SyncContext, *, planning: bool = False) -> str:
        return self._prepared_id(
            context,
            "audience_id",
            planning=planning,
            missing="no Meta audience id; prepare() was not run or audience creation failed",
        )

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        method = OPERATION_METHOD.get(operation)
        if method is None:
            raise ValueError(f"Meta Custom Audiences cannot '{operation}'; use add, upsert or remove")
        self._check_batch_size(records, "Meta's {limit} rows per request")
        _, rows, _ = self._rows(records)
        schema = [key for key in SCHEMA_ORDER if any(key in row for row in rows)]
        data = [[row.get(key, "") for key in schema] for row in rows]
        body = {
            "payload": {"schema": schema, "data": data},
            "session": {
                "session_id": self._session_id(operation, records, context),
                "batch_seq": 1,
                "last_batch_flag": True,
            },
        }
        audience = quote(self._audience_id(context, planning=True), safe="{}")
        return method, self._url(f"{audience}/users"), self._headers(), body

    @staticmethod
    def _session_id(operation: str, records: Sequence[Record], context: SyncContext) -> int:
        """One session per batch, derived from its content: a retried batch reuses its session id, and
        no session is left open for Meta to discard later batches after 90 minutes."""
        digest = hashlib.sha256(
            "\x1f".join([context.sync_name, operation, *(r.key for r in records)]).encode()
        ).digest()
        return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF or 1

    def _raise_for_error(self, response: requests.Response, action: str) -> None:
        if response.ok:
            return
        error = graph_error(response)
        code = error.get("code")
        message = f"Meta {action}: HTTP {response.status_code} code {code}: {error.get('message') or response.text[:200]}"
        if code in THROTTLE_CODES or response.status_code == 429:
            raise TransientError(
                message, retry_after=regain_access_seconds(response), http_status=response.status_code
            )
        if (
            code in AUTH_CODES
            or response.status_code == 401
            or "appsecret_proof" in str(error.get("message"))
        ):
            raise TerminalError(f"{message} (check the access token)", http_status=response.status_code)
        if code in PERMISSION_CODES or response.status_code == 403:
            raise TerminalError(
                f"{message} (the token lacks ads_management or the terms are not accepted)",
                http_status=response.status_code,
            )
        if response.status_code >= 500 or error.get("is_transient") or code in (1, 2):
            raise TransientError(message, http_status=response.status_code)
        if code == 803 or response.status_code == 404 or error.get("error_subcode") == 33:
            raise TerminalError(f"{message} (audience not found)", http_status=response.status_code)
        raise BatchRejected(message, http_status=response.status_code)

    # -- the contract ----------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            response = self.send_request(
                ("GET", self._url(self._account, {"fields": "id,name"}), self._headers(), None)
            )
            self._raise_for_error(response, "check")
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, f"ad account {self._account} reachable")

    def prepare(self, context: SyncContext) -> None:
        if self.settings.get("audience_id"):
            context.state["audience_id"] = str(self.settings["audience_id"])
            return
        name = self.settings.get("audience_name") or context.sync_name
        if context.state.get("audience_id") and context.state.get("audience_name") == name:
            return
        url: str | None = self._url(f"{self._account}/customaudiences", {"fields": "id,name", "limit": "500"})
        while url:
            response = self.send_request(("GET", url, self._headers(), None))
            self._raise_for_error(response, "list audiences")
            page = response.json()
            for audience in page.get("data", []):
                if audience.get("name") == name:
                    context.state.update(audience_id=str(audience["id"]), audience_name=name)
                    return
            url = (page.get("paging") or {}).get("next")
        body = {
            "name": name,
            "subtype": "CUSTOM",
            "customer_file_source": self.settings["customer_file_source"],
            "description": f"Synced from the warehouse by sync '{context.sync_name}'",
        }
        response = self.send_request(
            ("POST", self._url(f"{self._account}/customaudiences"), self._headers(), body)
        )
        self._raise_for_error(response, "create audience")
        context.state.update(audience_id=str(response.json()["id"]), audience_name=name)

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, rows, rejected = self._rows(records)
        if not kept:
            return rejected
        self._audience_id(context)  # fail before sending when there is no audience
        response = self.send_request(self.build_request(operation, kept, context))
        self._raise_for_error(response, f"{operation} users")
        body = response.json()
        invalid = self._invalid_values(body.get("invalid_entry_samples"))
        results = list(rejected)
        for record, row in zip(kept, rows, strict=True):
            bad = [value for value in row.values() if value in invalid]
            if bad:
                results.append(
                    RecordResult(record.key, ok=False, http_status=200, reason=f"Meta: {invalid[bad[0]]}")
                )
            else:
                results.append(RecordResult(record.key, ok=True, http_status=response.status_code))
        return results

    @staticmethod
    def _invalid_values(samples: Any) -> dict[str, str]:
        """invalid_entry_samples is a list of values or a map value -> reason."""
        if isinstance(samples, dict):
            return {str(k): str(v) for k, v in samples.items()}
        if isinstance(samples, list):
            return {str(v): "invalid entry" for v in samples}
        return {}
