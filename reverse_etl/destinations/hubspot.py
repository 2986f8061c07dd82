"""HubSpot CRM v3 contacts: batch upsert by email, and static-list membership for audiences.

API: ``POST /crm/v3/objects/contacts/batch/{upsert,update,create,read,archive}`` and
``PUT /crm/v3/lists/{listId}/memberships/{add,remove}`` (lists hold record ids, so audience adds upsert
the contacts first and removals look the ids up by email).
Batch limit: 100 inputs per batch call. Rate limit: per portal, 100-190 requests per 10 s for private
apps plus a daily cap; over it HubSpot answers 429 with ``errorType: RATE_LIMIT`` and a ``policyName``
(SECONDLY, TEN_SECONDLY_ROLLING, DAILY) that says which window to wait out.

Per-record errors come back as 207 Multi-Status, attributed through ``objectWriteTraceId`` (set to the
record's index in the batch). Duplicate ids inside one batch make HubSpot refuse the whole request
(400), which is reported as BatchRejected so the engine splits the batch.
"""

from __future__ import annotations

import datetime as dt
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

DEFAULT_BASE_URL = "https://api.hubapi.com"
CONTACTS = "crm/v3/objects/contacts"
CONTACT_OBJECT_TYPE = "0-1"


def property_value(value: Any) -> str:
    """HubSpot property values are strings; None clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


class HubSpotContacts(Destination):
    name = "hubspot"
    title = "HubSpot contacts"
    modes = ("upsert", "update", "insert", "mirror", "audience")
    limits = Limits(max_batch_size=100, requests_per_second=9.0, max_concurrency=2)
    identifier_fields = ("email",)
    settings_spec = (
        SettingSpec(
            "access_token",
            secret=True,
            help="env var holding a private-app token with crm.objects.contacts.write",
        ),
        SettingSpec(
            "list_id", required=False, help="static list id for audience mode; found or created by name"
        ),
        SettingSpec(
            "list_name", required=False, help="static list name for audience mode (default: sync name)"
        ),
        SettingSpec("base_url", required=False, default=DEFAULT_BASE_URL, help="API host"),
    )

    # -- identifiers -----------------------------------------------------------------------------

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        email = hashing.normalise_email(fields.get("email"))
        if email is None:
            return None, "no valid email"
        out = {key: value for key, value in fields.items() if key != "email"}
        out["email"] = email
        return out, None

    def matches_by_identifier(self, mode: str) -> bool:
        """Only a list is held by email: a mirror's removal archives the contact, which must never
        happen because an email changed (the new email is upserted as its own contact instead)."""
        return mode == "audience"

    def match_keys(self, fields: Mapping[str, Any]) -> frozenset[str]:
        """A list holds contact ids and adds upsert contacts by email, so a new email is a new contact:
        the old one must leave the list first (it stays in the CRM)."""
        return frozenset({fields["email"]})

    # -- requests --------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{str(self.settings['base_url']).rstrip('/')}/{path}"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.settings['access_token']}",
            "Content-Type": "application/json",
        }

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        """The request that carries the batch: a batch write for upsert/update/insert/add, the id lookup
        for remove (removal then archives or un-lists the ids found; see ``plan_requests``)."""
        self._check_batch_size(records, "HubSpot's {limit} inputs per batch")
        kept, _ = self._normalised(records)
        if operation in ("upsert", "add"):
            inputs = [
                {
                    "id": fields["email"],
                    "idProperty": "email",
                    "objectWriteTraceId": str(n),
                    "properties": {k: property_value(v) for k, v in fields.items()},
                }
                for n, (_, fields) in enumerate(kept)
            ]
            return "POST", self._url(f"{CONTACTS}/batch/upsert"), self._headers(), {"inputs": inputs}
        if operation == "update":
            inputs = [
                {
                    "id": fields["email"],
                    "idProperty": "email",
                    "objectWriteTraceId": str(n),
                    "properties": {k: property_value(v) for k, v in fields.items() if k != "email"},
                }
                for n, (_, fields) in enumerate(kept)
            ]
            return "POST", self._url(f"{CONTACTS}/batch/update"), self._headers(), {"inputs": inputs}
        if operation == "insert":
            inputs = [
                {
                    "associations": [],
                    "objectWriteTraceId": str(n),
                    "properties": {k: property_value(v) for k, v in fields.items()},
                }
                for n, (_, fields) in enumerate(kept)
            ]
            return "POST", self._url(f"{CONTACTS}/batch/create"), self._headers(), {"inputs": inputs}
        if operation == "remove":
            body = {
                "idProperty": "email",
                "inputs": [{"id": fields["email"]} for _, fields in kept],
                "properties": ["email"],
                "propertiesWithHistory": [],
            }
            return "POST", self._url(f"{CONTACTS}/batch/read"), self._headers(), body
        raise ValueError(f"HubSpot cannot '{operation}'; use upsert, update, insert, add or remove")

    def _membership_request(
        self, action: str, ids: list[str], context: SyncContext, *, planning: bool = False
    ) -> PlannedRequest:
        list_id = (
            context.state.get("list_id")
            or self.settings.get("list_id")
            or ("{list_id}" if planning else None)
        )
        if list_id is None:
            raise TerminalError(
                f"{self.source}: no HubSpot list id; prepare() was not run or list creation failed"
            )
        return "PUT", self._url(f"crm/v3/lists/{list_id}/memberships/{action}"), self._headers(), ids

    def plan_requests(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[PlannedRequest]:
        first = self.build_request(operation, records, context)
        placeholder = ["{contact ids from the previous response}"]
        if operation == "add":
            return [first, self._membership_request("add", placeholder, context, planning=True)]
        if operation == "remove":
            if context.mode == "audience":
                return [first, self._membership_request("remove", placeholder, context, planning=True)]
            archive = (
                "POST",
                self._url(f"{CONTACTS}/batch/archive"),
                self._headers(),
                {"inputs": [{"id": placeholder[0]}]},
            )
            return [first, archive]
        return [first]

    def _raise_for_error(self, response: requests.Response, action: str) -> None:
        if response.ok:
            return
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        message = f"HubSpot {action}: HTTP {response.status_code} {body.get('category') or body.get('errorType') or ''}: {body.get('message') or response.text[:200]}"
        if response.status_code == 429:
            raise TransientError(message, retry_after=self._rate_limit_wait(response, body), http_status=429)
        if response.status_code >= 500:
            raise TransientError(message, http_status=response.status_code)
        if response.status_code in (401, 403):
            raise TerminalError(
                f"{message} (check the token and its scopes)", http_status=response.status_code
            )
        if response.status_code == 404 and "lists" in response.url:
            raise TerminalError(f"{message} (the list does not exist)", http_status=404)
        raise BatchRejected(message, http_status=response.status_code)

    @staticmethod
    def _rate_limit_wait(response: requests.Response, body: Mapping[str, Any]) -> float | None:
        """HubSpot names the window that ran out; wait for that window."""
        explicit = retry_after_seconds(response)
        if explicit is not None:
            return explicit
        policy = str(body.get("policyName") or "").upper()
        if policy == "SECONDLY":
            return 1.0
        if policy == "DAILY":
            now = dt.datetime.now(dt.timezone.utc)
            midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            return (midnight - now).total_seconds()
        interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        try:
            return float(interval) / 1000.0 if interval else 10.0
        except ValueError:
            return 10.0

    # -- the contract ----------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            response = self.send_request(
                ("GET", self._url(f"{CONTACTS}?limit=1&archived=false"), self._headers(), None)
            )
            self._raise_for_error(response, "check")
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, "contacts readable")

    def prepare(self, context: SyncContext) -> None:
        if context.mode != "audience":
            return
        if self.settings.get("list_id"):
            context.state["list_id"] = str(self.settings["list_id"])
            return
        name = str(self.settings.get("list_name") or context.sync_name)
        if context.state.get("list_id") and context.state.get("list_name") == name:
            return
        response = self.send_request(
            (
                "GET",
                self._url(f"crm/v3/lists/object-type-id/{CONTACT_OBJECT_TYPE}/name/{quote(name, safe='')}"),
                self._headers(),
                None,
            )
        )
        if response.status_code != 404:
            self._raise_for_error(response, "find list")
            context.state.update(list_id=str(response.json()["list"]["listId"]), list_name=name)
            return
        body = {"name": name, "objectTypeId": CONTACT_OBJECT_TYPE, "processingType": "MANUAL"}
        response = self.send_request(("POST", self._url("crm/v3/lists"), self._headers(), body))
        self._raise_for_error(response, "create list")
        context.state.update(list_id=str(response.json()["list"]["listId"]), list_name=name)

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, results = self._normalised(records)
        if not kept:
            return results
        if operation == "add":
            self._membership_request("add", [], context)  # fail before writing when there is no list
        response = self.send_request(self.build_request(operation, [r for r, _ in kept], context))
        self._raise_for_error(response, f"batch {operation}")
        body = response.json()
        if operation == "remove":
            return results + self._remove(body, kept, context)
        failed = self._failures(body, kept)
        ids_by_index = self._ids_by_index(body, kept)
        if operation == "add":
            ids = [ids_by_index[n] for n in range(len(kept)) if n not in failed and n in ids_by_index]
            if ids:
                membership = self.send_request(self._membership_request("add", ids, context))
                self._raise_for_error(membership, "add list members")
        for n, (record, _) in enumerate(kept):
            if n in failed:
                results.append(
                    RecordResult(record.key, ok=False, http_status=response.status_code, reason=failed[n])
                )
            else:
                results.append(RecordResult(record.key, ok=True, http_status=response.status_code))
        return results

    def _remove(
        self, body: Mapping[str, Any], kept: list[tuple[Record, dict[str, Any]]], context: SyncContext
    ) -> list[RecordResult]:
        """Contacts that are not found are already gone: removal succeeded for them."""
        ids = [str(r["id"]) for r in body.get("results") or []]
        if ids and context.mode == "audience":
            response = self.send_request(self._membership_request("remove", ids, context))
            self._raise_for_error(response, "remove list members")
        elif ids:
            archive = {"inputs": [{"id": i} for i in ids]}
            response = self.send_request(
                ("POST", self._url(f"{CONTACTS}/batch/archive"), self._headers(), archive)
            )
            self._raise_for_error(response, "archive contacts")
        return [RecordResult(record.key, ok=True, http_status=200) for record, _ in kept]

    @staticmethod
    def _failures(body: Mapping[str, Any], kept: list[tuple[Record, dict[str, Any]]]) -> dict[int, str]:
        """207 errors by record index, through objectWriteTraceId or, failing that, the ids named."""
        by_email = {fields["email"]: n for n, (_, fields) in enumerate(kept)}
        failed: dict[int, str] = {}
        for error in body.get("errors") or []:
            context = error.get("context") or {}
            reason = f"{error.get('category', 'ERROR')}: {error.get('message', '')}"
            indexes = [int(t) for t in context.get("objectWriteTraceId") or [] if str(t).isdigit()]
            indexes += [
                by_email[str(i).lower()] for i in context.get("ids") or [] if str(i).lower() in by_email
            ]
            if not indexes:
                raise BatchRejected(f"HubSpot reported an error it did not attribute to a record: {reason}")
            for n in indexes:
                failed.setdefault(n, reason)
        return failed

    @staticmethod
    def _ids_by_index(body: Mapping[str, Any], kept: list[tuple[Record, dict[str, Any]]]) -> dict[int, str]:
        by_email = {fields["email"]: n for n, (_, fields) in enumerate(kept)}
        ids: dict[int, str] = {}
        for result in body.get("results") or []:
            trace = result.get("objectWriteTraceId")
            email = str((result.get("properties") or {}).get("email") or "").lower()
            n = int(trace) if str(trace).isdigit() else by_email.get(email)
            if n is not None:
                ids[n] = str(result["id"])
        return ids
