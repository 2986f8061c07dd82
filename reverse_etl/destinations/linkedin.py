"""LinkedIn Matched Audiences: streaming DMP segments of members matched by hashed email.

API (Rest.li 2.0, versioned): ``GET /rest/dmpSegments?q=account`` finds segments, ``POST /rest/dmpSegments``
creates one (the new id is in the ``x-linkedin-id`` header; LinkedIn asks to wait about 5 s before adding
users), and ``POST /rest/dmpSegments/{id}/users`` with ``X-RestLi-Method: BATCH_CREATE`` adds and removes
members: ``{"elements": [{"action": "ADD"|"REMOVE", "userIds": [{"idType": "SHA256_EMAIL", ...}], ...}]}``.
Every call sends ``LinkedIn-Version: YYYYMM`` and ``X-Restli-Protocol-Version: 2.0.0``.
Batch limit: 5,000 elements per request. Rate limit: 600 requests per minute per member on the users
endpoint plus daily quotas; over it LinkedIn answers 429 with no documented Retry-After.

The answer is 200 with one ``elements[i].status`` per element, in request order (201 accepted, 4xx with
an ``error``), so each record gets its own result. Emails are trimmed, lower-cased and SHA-256 hashed
here; names, title, company and country are sent plain because LinkedIn matches on them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

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
    retry_after_seconds,
)

DEFAULT_BASE_URL = "https://api.linkedin.com/rest"
DEFAULT_VERSION = "202604"
OPERATION_ACTION = {"add": "ADD", "upsert": "ADD", "remove": "REMOVE"}
PLAIN_FIELDS = {"first_name": "firstName", "last_name": "lastName", "title": "title", "company": "company"}


class LinkedInAudiences(Destination):
    name = "linkedin"
    title = "LinkedIn Matched Audiences"
    modes = ("audience", "mirror")
    # Customer lists need the person's consent to ad personalisation and to ad use of their data.
    consent_purposes = ("ads_personalization", "ad_user_data")
    limits = Limits(max_batch_size=5_000, requests_per_second=10.0, max_concurrency=1)
    identifier_fields = ("email", "google_aid", "first_name", "last_name", "title", "company", "country")
    settings_spec = (
        SettingSpec("ad_account_id", help="sponsored ad account id (digits, or urn:li:sponsoredAccount:...)"),
        SettingSpec("access_token", secret=True, help="env var holding a member token with rw_dmp_segments"),
        SettingSpec(
            "segment_id",
            required=False,
            help="existing DMP segment id; found or created by name when omitted",
        ),
        SettingSpec(
            "segment_name", required=False, help="DMP segment name to find or create (default: sync name)"
        ),
        SettingSpec(
            "api_version", required=False, default=DEFAULT_VERSION, help="LinkedIn-Version header, YYYYMM"
        ),
        SettingSpec(
            "create_wait_seconds",
            required=False,
            default=5.0,
            help="pause after creating a segment, as LinkedIn asks",
        ),
        SettingSpec("base_url", required=False, default=DEFAULT_BASE_URL, help="REST API root"),
    )

    # -- identifiers -----------------------------------------------------------------------------

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        user_ids = []
        email = hashing.normalise_email(fields.get("email"))
        if email:
            user_ids.append({"idType": "SHA256_EMAIL", "idValue": hashing.hash_if_needed(email)})
        aid = str(fields.get("google_aid") or "").strip().lower()
        if aid:
            user_ids.append({"idType": "GOOGLE_AID", "idValue": aid})
        out: dict[str, Any] = {"userIds": user_ids}
        for key, target in PLAIN_FIELDS.items():
            value = str(fields.get(key) or "").strip()
            if value:
                out[target] = value
        country = hashing.normalise_country(fields.get("country"))
        if country:
            out["country"] = country.upper()
        if not user_ids and not (out.get("firstName") and out.get("lastName")):
            return None, "no valid email or google_aid, and no first and last name"
        return out, None

    def match_keys(self, fields: Mapping[str, Any]) -> frozenset[str]:
        """Members are matched by each user id, or by first and last name when there is none."""
        keys = {f"{u['idType']}:{u['idValue']}" for u in fields.get("userIds") or []}
        if not keys and fields.get("firstName") and fields.get("lastName"):
            keys.add(f"NAME:{str(fields['firstName']).lower()}|{str(fields['lastName']).lower()}")
        return frozenset(keys)

    # -- requests --------------------------------------------------------------------------------

    @property
    def _account_urn(self) -> str:
        account = str(self.settings["ad_account_id"])
        return account if account.startswith("urn:") else f"urn:li:sponsoredAccount:{account}"

    def _url(self, path: str) -> str:
        return f"{str(self.settings['base_url']).rstrip('/')}/{path.lstrip('/')}"

    def _headers(self, method: str | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.settings['access_token']}",
            "LinkedIn-Version": str(self.settings["api_version"]),
            "X-Restli-Protocol-Version": "2.0.0",
            "Content-Type": "application/json",
        }
        if method:
            headers["X-RestLi-Method"] = method
        return headers

    def _segment_id(self, context: SyncContext, *, planning: bool = False) -> str:
        return self._prepared_id(
            context,
            "segment_id",
            planning=planning,
            missing="no LinkedIn DMP segment id; prepare() was not run or creation failed",
        )

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        action = OPERATION_ACTION.get(operation)
        if action is None:
            raise ValueError(f"LinkedIn Matched Audiences cannot '{operation}'; use add, upsert or remove")
        self._check_batch_size(records, "LinkedIn's {limit} elements per request")
        kept, _ = self._normalised(records)
        elements = [{"action": action, **element} for _, element in kept]
        segment = quote(self._segment_id(context, planning=True), safe="{}")
        url = self._url(f"dmpSegments/{segment}/users")
        return "POST", url, self._headers("BATCH_CREATE"), {"elements": elements}

    def _raise_for_error(self, response: requests.Response, action: str) -> None:
        if response.ok:
            return
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        message = (
            f"LinkedIn {action}: HTTP {response.status_code} {body.get('code') or ''}: "
            f"{body.get('message') or response.text[:200]}"
        )
        status = response.status_code
        if status == 429:
            raise TransientError(message, retry_after=retry_after_seconds(response), http_status=429)
        if status >= 500:
            raise TransientError(message, http_status=status)
        if status == 401:
            raise TerminalError(f"{message} (the token is invalid or expired; re-authorise)", http_status=401)
        if status == 403:
            raise TerminalError(
                f"{message} (the member needs rw_dmp_segments and a non-viewer role on the ad account)",
                http_status=403,
            )
        if status == 404:
            raise TerminalError(f"{message} (the DMP segment does not exist)", http_status=404)
        if status == 426:
            raise TerminalError(f"{message} (set api_version to an active LinkedIn-Version)", http_status=426)
        raise BatchRejected(message, http_status=status)

    def _find_url(self, start: int, count: int) -> str:
        account = quote(self._account_urn, safe="")
        return self._url(f"dmpSegments?q=account&account={account}&start={start}&count={count}")

    # -- the contract ----------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            response = self.send_request(("GET", self._find_url(0, 1), self._headers(), None))
            self._raise_for_error(response, "check")
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, f"DMP segments of {self._account_urn} readable")

    def prepare(self, context: SyncContext) -> None:
        if self.settings.get("segment_id"):
            context.state["segment_id"] = str(self.settings["segment_id"])
            return
        name = str(self.settings.get("segment_name") or context.sync_name)
        if context.state.get("segment_id") and context.state.get("segment_name") == name:
            return
        start, count = 0, 100
        while True:
            response = self.send_request(("GET", self._find_url(start, count), self._headers(), None))
            self._raise_for_error(response, "find segments")
            page = response.json()
            for segment in page.get("elements") or []:
                if segment.get("name") == name or segment.get("sourceSegmentId") == name:
                    context.state.update(segment_id=str(segment["id"]), segment_name=name)
                    return
            start += count
            if start >= int((page.get("paging") or {}).get("total") or 0):
                break
        body = {
            "name": name,
            "sourcePlatform": "STREAMING",
            "sourceSegmentId": name,
            "account": self._account_urn,
            "type": "USER_STREAMING",
            "accessPolicy": "PRIVATE",
            "destinations": [{"destination": "LINKEDIN"}],
        }
        response = self.send_request(("POST", self._url("dmpSegments"), self._headers(), body))
        self._raise_for_error(response, "create segment")
        segment_id = response.headers.get("x-linkedin-id") or response.headers.get("x-restli-id")
        if not segment_id:
            raise TerminalError("LinkedIn created the segment but returned no x-linkedin-id header")
        context.state.update(segment_id=segment_id.rsplit(":", 1)[-1], segment_name=name)
        time.sleep(float(self.settings["create_wait_seconds"] or 0))

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, results = self._normalised(records)
        if not kept:
            return results
        self._segment_id(context)
        response = self.send_request(self.build_request(operation, [r for r, _ in kept], context))
        self._raise_for_error(response, f"{operation} users")
        elements = response.json().get("elements")
        if not isinstance(elements, list) or len(elements) != len(kept):
            raise BatchRejected(
                f"LinkedIn returned {len(elements) if isinstance(elements, list) else 'no'} element results "
                f"for {len(kept)} elements"
            )
        for (record, _), element in zip(kept, elements, strict=True):
            status = int(element.get("status") or 0)
            if 200 <= status < 300:
                results.append(RecordResult(record.key, ok=True, http_status=status))
            else:
                error = element.get("error") or {}
                results.append(
                    RecordResult(
                        record.key, ok=False, http_status=status, reason=str(error.get("message") or status)
                    )
                )
        return results
