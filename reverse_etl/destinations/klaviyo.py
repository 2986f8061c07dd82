"""Klaviyo profiles and lists (JSON:API, revisioned).

API: ``POST /api/profile-bulk-import-jobs`` upserts profiles (and, with a ``lists`` relationship, puts
them on the list) as an asynchronous job, polled at ``GET /api/profile-bulk-import-jobs/{id}``, whose
per-profile failures are listed at ``.../import-errors``. Removal from a list is
``DELETE /api/lists/{id}/relationships/profiles`` with profile ids looked up by email.
Every request carries the ``revision`` header. Batch limit: 10,000 profiles per import job but 1,000
profile ids per list call, so a batch here is at most 1,000. Rate limit: 10/s burst, 150/min steady for
these endpoints; over it Klaviyo answers 429 with ``Retry-After`` in seconds.
"""

from __future__ import annotations

import json
import time
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
    retry_after_seconds,
)

DEFAULT_BASE_URL = "https://a.klaviyo.com"
REVISION = "2026-07-15"
PROFILE_ATTRIBUTES = ("first_name", "last_name", "organization", "locale", "title", "image")
IDENTIFIERS = ("email", "phone_number", "external_id")
LOOKUP_CHUNK = 100


class KlaviyoProfiles(Destination):
    name = "klaviyo"
    title = "Klaviyo profiles and lists"
    modes = ("upsert", "audience")
    limits = Limits(
        max_batch_size=1_000, requests_per_second=2.5, max_concurrency=1, max_payload_bytes=5_000_000
    )
    identifier_fields = ("email", "phone", "external_id")
    settings_spec = (
        SettingSpec(
            "api_key",
            secret=True,
            help="env var holding a private API key (pk_...) with profiles and lists scopes",
        ),
        SettingSpec(
            "list_id", required=False, help="list for audience mode; found or created by name when omitted"
        ),
        SettingSpec("list_name", required=False, help="list name for audience mode (default: sync name)"),
        SettingSpec("revision", required=False, default=REVISION, help="API revision header"),
        SettingSpec(
            "default_phone_country", required=False, default="us", help="country of national phone numbers"
        ),
        SettingSpec(
            "job_timeout_seconds", required=False, default=300, help="how long to wait for an import job"
        ),
        SettingSpec("base_url", required=False, default=DEFAULT_BASE_URL, help="API host"),
    )

    # -- identifiers -----------------------------------------------------------------------------

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        out: dict[str, Any] = {}
        email = hashing.normalise_email(fields.get("email"))
        if email:
            out["email"] = email
        country = hashing.normalise_country(fields.get("country"))
        phone = hashing.normalise_phone_e164(
            fields.get("phone_number") or fields.get("phone"),
            country or self.settings["default_phone_country"],
        )
        if phone:
            out["phone_number"] = phone
        if fields.get("external_id") not in (None, ""):
            out["external_id"] = str(fields["external_id"])
        if not out:
            return None, "no valid email, phone or external_id"
        for key, value in fields.items():
            if key in ("email", "phone", "phone_number", "external_id") or value is None:
                continue
            if key in PROFILE_ATTRIBUTES:
                out[key] = str(value)
            else:
                out.setdefault("properties", {})[key] = value
        return out, None

    def match_keys(self, fields: Mapping[str, Any]) -> frozenset[str]:
        """A list holds profile ids, and an import finds the profile by any identifier it carries: a
        record that keeps its external id or phone lands on the same profile, whose email the import
        then updates, so an email change is an update. Only a record whose most stable identifier
        changed (external id, else phone, else email: one with just an email) would land on a new
        profile and leave the old one on the list, so that identifier is the match key."""
        for key in ("external_id", "phone_number", "email"):
            if fields.get(key):
                return frozenset({f"{key}:{fields[key]}"})
        return frozenset()

    # -- requests --------------------------------------------------------------------------------

    def _url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{str(self.settings['base_url']).rstrip('/')}/{path.lstrip('/')}{suffix}"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Klaviyo-API-Key {self.settings['api_key']}",
            "revision": str(self.settings["revision"]),
            "Accept": "application/vnd.api+json",
            "Content-Type": "application/vnd.api+json",
        }

    def _list_id(self, context: SyncContext, *, planning: bool = False) -> str | None:
        list_id = context.state.get("list_id") or self.settings.get("list_id")
        if list_id or context.mode != "audience":
            return list_id
        if planning:
            return "{list_id}"
        raise TerminalError(
            f"{self.source}: no Klaviyo list id; prepare() was not run or list creation failed"
        )

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        """Adds and upserts are a bulk import job; removal is the profile-id lookup by email (removal
        then drops the ids found from the list; see ``plan_requests``)."""
        self._check_batch_size(records, "the {limit} profiles per batch kept here")
        kept, _ = self._normalised(records)
        if operation in ("add", "upsert"):
            profiles = [{"type": "profile", "attributes": fields} for _, fields in kept]
            data: dict[str, Any] = {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": profiles}},
            }
            list_id = self._list_id(context, planning=True) if operation == "add" else None
            if list_id:
                data["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
            return "POST", self._url("api/profile-bulk-import-jobs"), self._headers(), {"data": data}
        if operation == "remove":
            return self._lookup_requests(kept)[0]
        raise ValueError(f"Klaviyo cannot '{operation}'; use add, upsert or remove")

    def _remove_request(
        self, ids: list[str], context: SyncContext, *, planning: bool = False
    ) -> PlannedRequest:
        body = {"data": [{"type": "profile", "id": i} for i in ids]}
        list_id = self._list_id(context, planning=planning)
        return "DELETE", self._url(f"api/lists/{list_id}/relationships/profiles"), self._headers(), body

    def plan_requests(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[PlannedRequest]:
        first = self.build_request(operation, records, context)
        if operation == "remove":
            lookups = self._lookup_requests(self._normalised(records)[0])
            return [*lookups, self._remove_request(["{profile ids from the lookup}"], context, planning=True)]
        job = "{job_id}"
        return [
            first,
            ("GET", self._url(f"api/profile-bulk-import-jobs/{job}"), self._headers(), None),
            ("GET", self._url(f"api/profile-bulk-import-jobs/{job}/import-errors"), self._headers(), None),
        ]

    def _raise_for_error(self, response: requests.Response, action: str) -> None:
        if response.ok:
            return
        try:
            errors = response.json().get("errors") or []
        except (ValueError, AttributeError):
            errors = []
        detail = (
            "; ".join(f"{e.get('code')}: {e.get('detail')}" for e in errors if isinstance(e, dict))
            or response.text[:200]
        )
        message = f"Klaviyo {action}: HTTP {response.status_code}: {detail}"
        if response.status_code == 429:
            raise TransientError(message, retry_after=retry_after_seconds(response), http_status=429)
        if response.status_code >= 500:
            raise TransientError(message, http_status=response.status_code)
        if response.status_code in (401, 403):
            raise TerminalError(
                f"{message} (check the API key and its scopes)", http_status=response.status_code
            )
        if response.status_code == 404:
            raise TerminalError(message, http_status=404)
        raise BatchRejected(message, http_status=response.status_code)

    def _get(self, url: str, action: str) -> dict[str, Any]:
        response = self.send_request(("GET", url, self._headers(), None))
        self._raise_for_error(response, action)
        return response.json()

    # -- the contract ----------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            self._get(self._url("api/lists", {"page[size]": "1"}), "check")
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, "lists readable")

    def prepare(self, context: SyncContext) -> None:
        if context.mode != "audience":
            return
        if self.settings.get("list_id"):
            context.state["list_id"] = str(self.settings["list_id"])
            return
        name = str(self.settings.get("list_name") or context.sync_name)
        if context.state.get("list_id") and context.state.get("list_name") == name:
            return
        found = self._get(self._url("api/lists", {"filter": f"equals(name,{json.dumps(name)})"}), "find list")
        if found.get("data"):
            context.state.update(list_id=found["data"][0]["id"], list_name=name)
            return
        body = {"data": {"type": "list", "attributes": {"name": name}}}
        response = self.send_request(("POST", self._url("api/lists"), self._headers(), body))
        self._raise_for_error(response, "create list")
        context.state.update(list_id=response.json()["data"]["id"], list_name=name)

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, results = self._normalised(records)
        if not kept:
            return results
        if operation == "add":
            self._list_id(context)
        request = self.build_request(operation, [r for r, _ in kept], context)
        if operation == "remove":
            return results + self._remove(kept, context)
        response = self.send_request(request)
        self._raise_for_error(response, "bulk import")
        job_id = response.json()["data"]["id"]
        failed = self._import_errors(job_id)
        for record, fields in kept:
            reason = next((failed[v] for v in (fields.get(k) for k in IDENTIFIERS) if v in failed), None)
            results.append(RecordResult(record.key, ok=reason is None, http_status=202, reason=reason))
        return results

    def _import_errors(self, job_id: str) -> dict[str, str]:
        """Wait for the job, then map each import error's identifiers to its message."""
        deadline = time.monotonic() + float(self.settings["job_timeout_seconds"])
        delay = 0.05
        while True:
            job = self._get(self._url(f"api/profile-bulk-import-jobs/{job_id}"), "import job status")
            status = job["data"]["attributes"]["status"]
            if status == "complete":
                break
            if status == "cancelled":
                raise BatchRejected(f"Klaviyo import job {job_id} was cancelled")
            if time.monotonic() > deadline:
                raise TransientError(
                    f"Klaviyo import job {job_id} still {status} after {self.settings['job_timeout_seconds']}s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        failed: dict[str, str] = {}
        if not job["data"]["attributes"].get("failed_count"):
            return failed
        url: str | None = self._url(f"api/profile-bulk-import-jobs/{job_id}/import-errors")
        while url:
            page = self._get(url, "import errors")
            for error in page.get("data") or []:
                attrs = error.get("attributes") or {}
                payload = attrs.get("original_payload") or {}
                payload = payload.get("attributes", payload) if isinstance(payload, dict) else {}
                for key in IDENTIFIERS:
                    if payload.get(key):
                        failed[str(payload[key])] = (
                            f"{attrs.get('code', 'invalid')}: {attrs.get('detail', '')}"
                        )
            url = (page.get("links") or {}).get("next")
        return failed

    def _lookup_requests(self, kept: list[tuple[Record, dict[str, Any]]]) -> list[PlannedRequest]:
        """Profile ids by email, 100 emails per filter (the page size), so the URL stays short."""
        emails = [fields["email"] for _, fields in kept if "email" in fields]
        requests_: list[PlannedRequest] = []
        for start in range(0, len(emails), LOOKUP_CHUNK):
            chunk = emails[start : start + LOOKUP_CHUNK]
            query = {"filter": f"any(email,{json.dumps(chunk)})", "page[size]": str(LOOKUP_CHUNK)}
            requests_.append(("GET", self._url("api/profiles", query), self._headers(), None))
        return requests_ or [
            ("GET", self._url("api/profiles", {"filter": "any(email,[])"}), self._headers(), None)
        ]

    def _remove(self, kept: list[tuple[Record, dict[str, Any]]], context: SyncContext) -> list[RecordResult]:
        """Profiles that do not exist are not on the list: removal succeeded for them."""
        ids: list[str] = []
        for request in self._lookup_requests(kept):
            url: str | None = request[1]
            while url:
                page = self._get(url, "find profiles")
                ids.extend(p["id"] for p in page.get("data") or [])
                url = (page.get("links") or {}).get("next")
        if ids and context.mode == "audience":
            response = self.send_request(self._remove_request(ids, context))
            self._raise_for_error(response, "remove from list")
        return [RecordResult(record.key, ok=True, http_status=204) for record, _ in kept]
