"""TikTok Audiences, Business API v1.3 streaming ("partner") audiences.

API: ``POST /segment/audience/`` creates an audience; ``POST /segment/mapping/`` adds or deletes users,
each user a row of ``{"id", "audience_ids"}`` cells aligned with ``id_schema`` (``{}`` for a missing id);
``GET /dmp/custom_audience/list/`` finds an audience by name. Auth is the ``Access-Token`` header.
Batch limit: TikTok documents none for ``segment/mapping``; 1,000 users per request is the size other
integrations use and what this destination sends. Rate limit: 10 QPS / 600 QPM / 864,000 QPD per app on
the Basic tier; over it TikTok answers **HTTP 200** with ``code: 40100`` in the body and no wait hint
(retry next second; a per-day limit waits for 00:00 UTC).

Every identifier is normalised per TikTok's customer-file rules (email lower-case without ``+tag``;
phone digits with country code and no ``+``; mobile ad ids lower-case) and SHA-256 hashed here. TikTok
reports no per-row errors: a batch succeeds (code 0) or fails as a whole, so a refused or partially
accepted batch (20001) is reported as BatchRejected and the engine splits it to find the bad rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

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

DEFAULT_BASE_URL = "https://business-api.tiktok.com/open_api/v1.3"
ID_SCHEMA = ("EMAIL_SHA256", "PHONE_SHA256", "IDFA_SHA256", "AAID_SHA256")
OPERATION_ACTION = {"add": "add", "upsert": "add", "remove": "delete"}
THROTTLE_CODE = 40100
PARTIAL_CODE = 20001


def tiktok_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def mobile_ad_id(value: Any) -> str | None:
    """IDFA/AAID in one case (lower), so the same device always hashes the same."""
    text = str(value).strip().lower() if value is not None else ""
    return text if text and set(text) - {"0", "-"} else None


def seconds_to_utc_midnight() -> float:
    now = dt.datetime.now(dt.timezone.utc)
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


class TikTokAudiences(Destination):
    name = "tiktok"
    title = "TikTok Audiences"
    modes = ("audience", "mirror")
    # Customer lists need the person's consent to ad personalisation and to ad use of their data.
    consent_purposes = ("ads_personalization", "ad_user_data")
    limits = Limits(max_batch_size=1_000, requests_per_second=5.0, max_concurrency=1)
    identifier_fields = ("email", "phone", "idfa", "aaid")
    settings_spec = (
        SettingSpec("advertiser_id", help="TikTok advertiser id the audience belongs to"),
        SettingSpec("access_token", secret=True, help="env var holding a long-lived advertiser access token"),
        SettingSpec(
            "audience_id", required=False, help="existing audience id; found or created by name when omitted"
        ),
        SettingSpec(
            "audience_name", required=False, help="audience name to find or create (default: sync name)"
        ),
        SettingSpec(
            "default_phone_country", required=False, default="us", help="country of national phone numbers"
        ),
        SettingSpec("base_url", required=False, default=DEFAULT_BASE_URL, help="API root with version"),
    )

    # -- identifiers -----------------------------------------------------------------------------

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        country = hashing.normalise_country(fields.get("country"))
        plain = {
            "EMAIL_SHA256": hashing.normalise_email_tiktok(fields.get("email")),
            "PHONE_SHA256": hashing.normalise_phone_digits(
                fields.get("phone"), country or self.settings["default_phone_country"]
            ),
            "IDFA_SHA256": mobile_ad_id(fields.get("idfa")),
            "AAID_SHA256": mobile_ad_id(fields.get("aaid") or fields.get("gaid")),
        }
        out = {k: hashing.hash_if_needed(v) for k, v in plain.items() if v}
        if not out:
            return None, "no valid email, phone, idfa or aaid"
        return out, None

    def match_keys(self, fields: Mapping[str, Any]) -> frozenset[str]:
        """Every hashed id is a member of the audience on its own."""
        return frozenset(f"{key}:{value}" for key, value in fields.items() if key in ID_SCHEMA and value)

    # -- requests --------------------------------------------------------------------------------

    def _url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{str(self.settings['base_url']).rstrip('/')}/{path.strip('/')}/{suffix}"

    def _headers(self) -> dict[str, str]:
        return {"Access-Token": str(self.settings["access_token"]), "Content-Type": "application/json"}

    def _audience_id(self, context: SyncContext, *, planning: bool = False) -> str:
        return self._prepared_id(
            context,
            "audience_id",
            planning=planning,
            missing="no TikTok audience id; prepare() was not run or creation failed",
        )

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        action = OPERATION_ACTION.get(operation)
        if action is None:
            raise ValueError(f"TikTok Audiences cannot '{operation}'; use add, upsert or remove")
        self._check_batch_size(records, "the {limit} users sent per request")
        kept, _ = self._normalised(records)
        audience = self._audience_id(context, planning=True)
        schema = [k for k in ID_SCHEMA if any(k in ids for _, ids in kept)]
        batch = [
            [{"id": ids[k], "audience_ids": [audience]} if k in ids else {} for k in schema]
            for _, ids in kept
        ]
        body = {
            "advertiser_ids": [str(self.settings["advertiser_id"])],
            "action": action,
            "id_schema": schema,
            "batch_data": batch,
        }
        return "POST", self._url("segment/mapping"), self._headers(), body

    def _raise_for_error(self, response: requests.Response, action: str) -> dict[str, Any]:
        """TikTok's ``code`` outranks the HTTP status: 200 can carry a throttle or an auth failure."""
        body = tiktok_body(response)
        code = body.get("code")
        if response.ok and code == 0:
            return body
        message = f"TikTok {action}: HTTP {response.status_code} code {code}: {body.get('message') or response.text[:200]}"
        if code == THROTTLE_CODE or response.status_code == 429:
            text = str(body.get("message") or "").lower()
            wait = seconds_to_utc_midnight() if "day" in text else 60.0 if "minute" in text else 1.0
            raise TransientError(message, retry_after=wait, http_status=response.status_code)
        if response.status_code >= 500 or (isinstance(code, int) and code >= 50000):
            raise TransientError(message, http_status=response.status_code)
        if response.status_code in (401, 403) or (isinstance(code, int) and 40100 < code < 40200):
            raise TerminalError(
                f"{message} (check the access token and its advertiser)", http_status=response.status_code
            )
        if code == PARTIAL_CODE:
            raise BatchRejected(f"{message} (partial success; splitting to find the refused rows)")
        raise BatchRejected(message, http_status=response.status_code)

    # -- the contract ----------------------------------------------------------------------------

    def _list_page(self, page: int, size: int) -> dict[str, Any]:
        query = {"advertiser_id": self.settings["advertiser_id"], "page": page, "page_size": size}
        response = self.send_request(
            ("GET", self._url("dmp/custom_audience/list", query), self._headers(), None)
        )
        return self._raise_for_error(response, "list audiences").get("data") or {}

    def check(self) -> CheckResult:
        try:
            self._list_page(1, 1)
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, f"advertiser {self.settings['advertiser_id']} audiences readable")

    def prepare(self, context: SyncContext) -> None:
        if self.settings.get("audience_id"):
            context.state["audience_id"] = str(self.settings["audience_id"])
            return
        name = str(self.settings.get("audience_name") or context.sync_name)[:128]
        if context.state.get("audience_id") and context.state.get("audience_name") == name:
            return
        page = 1
        while True:
            data = self._list_page(page, 100)
            for audience in data.get("list") or []:
                if audience.get("name") == name:
                    context.state.update(audience_id=str(audience["audience_id"]), audience_name=name)
                    return
            if page >= int((data.get("page_info") or {}).get("total_page") or 1):
                break
            page += 1
        body = {
            "custom_audience_name": name,
            "advertiser_id": str(self.settings["advertiser_id"]),
            "action": "create",
        }
        response = self.send_request(("POST", self._url("segment/audience"), self._headers(), body))
        data = self._raise_for_error(response, "create audience").get("data") or {}
        context.state.update(audience_id=str(data["audience_id"]), audience_name=name)

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, results = self._normalised(records)
        if not kept:
            return results
        self._audience_id(context)
        response = self.send_request(self.build_request(operation, [r for r, _ in kept], context))
        self._raise_for_error(response, f"{operation} users")
        return results + [RecordResult(r.key, ok=True, http_status=response.status_code) for r, _ in kept]
