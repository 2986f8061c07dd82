"""Mailchimp Marketing API v3: audience members, and a static segment (a tag) for audience mode.

API: ``POST /lists/{list_id}`` batch-subscribes or updates members (``update_existing: true``) and
answers HTTP 200 even when some members failed, listing them in ``errors[]`` by ``email_address``.
Audience mode puts the members on the list first, then adds their addresses to a static segment with
``POST /lists/{list_id}/segments/{segment_id}`` (``members_to_add`` / ``members_to_remove``; Mailchimp
shows static segments as tags). A member's id is the MD5 of the lower-cased address (subscriber hash).
Batch limit: 500 members per batch call and 500 addresses per segment array.
Rate limit: 10 simultaneous connections per account; the 11th gets HTTP 429 with no Retry-After (at very
high volume a 403 or 429 without a JSON body). Requests time out after 120 s.

The member status is never guessed: it comes from the record's ``status``, else from its
``email_consent`` (granted -> subscribed, revoked -> unsubscribed), else from the ``default_status``
setting; a record with none of them is rejected with a reason, so nobody is subscribed by accident.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

from reverse_etl.destinations import hashing
from reverse_etl.destinations.base import (
    BatchRejected,
    CheckResult,
    ConfigError,
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

STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
# Record fields that become Mailchimp's default merge fields; UPPER-CASE fields are merge tags as-is.
MERGE_FIELDS = {
    "first_name": "FNAME",
    "last_name": "LNAME",
    "phone": "PHONE",
    "birthday": "BIRTHDAY",
    "address": "ADDRESS",
}
MERGE_TAG_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,9}$")
TOP_LEVEL = ("language", "vip", "email_type")


class MailchimpMembers(Destination):
    name = "mailchimp"
    title = "Mailchimp audience members"
    modes = ("upsert", "audience")
    limits = Limits(max_batch_size=500, requests_per_second=None, max_concurrency=4)
    identifier_fields = ("email",)
    settings_spec = (
        SettingSpec(
            "api_key",
            secret=True,
            help="env var holding an API key (xxxx-us6; the suffix is the data centre)",
        ),
        SettingSpec(
            "list_id", help="the audience (list) id, from Audience > Settings > Audience name and defaults"
        ),
        SettingSpec(
            "segment_id",
            required=False,
            help="static segment (tag) for audience mode; found or created by name",
        ),
        SettingSpec(
            "segment_name",
            required=False,
            help="static segment (tag) name for audience mode (default: sync name)",
        ),
        SettingSpec(
            "default_status",
            required=False,
            help="status of records without status/email_consent: subscribed, transactional, ... (none: reject them)",
        ),
        SettingSpec(
            "base_url",
            required=False,
            help="API root (default https://<dc>.api.mailchimp.com/3.0 from the key)",
        ),
    )

    def __init__(self, settings: Mapping[str, Any], *, source: str = "<settings>") -> None:
        super().__init__(settings, source=source)
        status = self.settings.get("default_status")
        if status is not None and status not in STATUSES:
            raise ConfigError(
                f"{source}: default_status {status!r} is not a Mailchimp status; use one of {', '.join(STATUSES)}"
            )
        if not self.settings.get("base_url"):
            key = str(self.settings["api_key"])
            dc = key.rsplit("-", 1)[1] if "-" in key else ""
            if not re.fullmatch(r"[a-z]{2,4}\d{1,3}", dc):
                raise ConfigError(
                    f"{source}: the Mailchimp API key has no data-centre suffix (like -us6); "
                    "set base_url: https://<dc>.api.mailchimp.com/3.0"
                )
            self.settings["base_url"] = f"https://{dc}.api.mailchimp.com/3.0"

    # -- identifiers -----------------------------------------------------------------------------

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        email = hashing.normalise_email(fields.get("email") or fields.get("email_address"))
        if email is None:
            return None, "no valid email"
        status = fields.get("status")
        if status is None:
            consent = hashing.truthy(fields.get("email_consent"))
            status = {True: "subscribed", False: "unsubscribed"}.get(consent) if consent is not None else None
        status = status or self.settings.get("default_status")
        if status is None:
            return None, "no status: map a status or email_consent column, or set default_status"
        if status not in STATUSES:
            return None, f"status {status!r} is not one of {', '.join(STATUSES)}"
        member: dict[str, Any] = {"email_address": email, "status": status}
        merge: dict[str, Any] = {}
        for key, value in fields.items():
            if value is None:
                continue
            if key in MERGE_FIELDS:
                merge[MERGE_FIELDS[key]] = str(value)
            elif MERGE_TAG_RE.match(key):
                merge[key] = value if isinstance(value, (int, float, dict)) else str(value)
            elif key in TOP_LEVEL:
                member[key] = value
        if merge:
            member["merge_fields"] = merge
        return member, None

    def match_keys(self, fields: Mapping[str, Any]) -> frozenset[str]:
        """A member's id is the hash of its address, so a new address is a new member: the old one
        must leave the segment (it stays on the list, only untagged)."""
        return frozenset({fields["email_address"]})

    # -- requests --------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{str(self.settings['base_url']).rstrip('/')}/{path.lstrip('/')}"

    def _headers(self) -> dict[str, str]:
        token = base64.b64encode(f"cdp:{self.settings['api_key']}".encode()).decode()
        return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    @property
    def _list(self) -> str:
        return quote(str(self.settings["list_id"]), safe="")

    def _segment_id(self, context: SyncContext, *, planning: bool = False) -> str:
        return self._prepared_id(
            context,
            "segment_id",
            planning=planning,
            missing="no Mailchimp segment id; prepare() was not run or segment creation failed",
        )

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        """The members batch for upsert/add; the segment removal for remove."""
        self._check_batch_size(records, "Mailchimp's {limit} members per request")
        kept, _ = self._normalised(records)
        if operation in ("upsert", "add"):
            body = {"members": [m for _, m in kept], "update_existing": True, "sync_tags": False}
            return "POST", self._url(f"lists/{self._list}"), self._headers(), body
        if operation == "remove":
            return self._segment_request(
                "members_to_remove", [m["email_address"] for _, m in kept], context, True
            )
        raise ValueError(f"Mailchimp cannot '{operation}'; use upsert, add or remove")

    def _segment_request(
        self, field: str, emails: list[str], context: SyncContext, planning: bool = False
    ) -> PlannedRequest:
        segment = self._segment_id(context, planning=planning)
        url = self._url(f"lists/{self._list}/segments/{quote(segment, safe='{}')}")
        return "POST", url, self._headers(), {field: emails}

    def plan_requests(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[PlannedRequest]:
        first = self.build_request(operation, records, context)
        if operation == "add":
            emails = [m["email_address"] for _, m in self._normalised(records)[0]]
            return [first, self._segment_request("members_to_add", emails, context, True)]
        return [first]

    def _raise_for_error(self, response: requests.Response, action: str) -> None:
        if response.ok:
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        problem = body if isinstance(body, dict) else {}
        detail = (
            f"{problem.get('title', '')}: {problem.get('detail', '')}" if problem else response.text[:200]
        )
        message = f"Mailchimp {action}: HTTP {response.status_code} {detail}"
        status = response.status_code
        # Over the connection limit Mailchimp answers 429, and at high volume 403 with no JSON body.
        if status == 429 or (status == 403 and not problem):
            raise TransientError(
                f"{message} (more than 10 simultaneous connections)",
                retry_after=retry_after_seconds(response),
                http_status=status,
            )
        if status >= 500:
            raise TransientError(message, http_status=status)
        if status in (401, 403):
            raise TerminalError(f"{message} (check the API key and its data centre)", http_status=status)
        if status == 404:
            raise TerminalError(f"{message} (the list or segment does not exist)", http_status=404)
        raise BatchRejected(message, http_status=status)

    # -- the contract ----------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            response = self.send_request(
                ("GET", self._url(f"lists/{self._list}?fields=id,name"), self._headers(), None)
            )
            self._raise_for_error(response, "check")
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, f"audience {response.json().get('name')!r} reachable")

    def prepare(self, context: SyncContext) -> None:
        if context.mode != "audience":
            return
        if self.settings.get("segment_id"):
            context.state["segment_id"] = str(self.settings["segment_id"])
            return
        name = str(self.settings.get("segment_name") or context.sync_name)
        if context.state.get("segment_id") and context.state.get("segment_name") == name:
            return
        offset, count = 0, 1000
        while True:
            url = self._url(f"lists/{self._list}/segments?type=static&count={count}&offset={offset}")
            response = self.send_request(("GET", url, self._headers(), None))
            self._raise_for_error(response, "list segments")
            page = response.json()
            for segment in page.get("segments") or []:
                if segment.get("name") == name:
                    context.state.update(segment_id=str(segment["id"]), segment_name=name)
                    return
            offset += count
            if offset >= int(page.get("total_items") or 0):
                break
        body = {"name": name, "static_segment": []}
        response = self.send_request(
            ("POST", self._url(f"lists/{self._list}/segments"), self._headers(), body)
        )
        self._raise_for_error(response, "create segment")
        context.state.update(segment_id=str(response.json()["id"]), segment_name=name)

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, results = self._normalised(records)
        if not kept:
            return results
        if operation in ("add", "remove"):
            self._segment_id(context)  # fail before writing when there is no segment
        request = self.build_request(operation, [r for r, _ in kept], context)
        response = self.send_request(request)
        if operation == "remove":
            self._raise_for_error(response, "remove from segment")
            failed = self._segment_errors(response.json())
            return results + self._results(kept, failed, response.status_code)
        self._raise_for_error(response, "batch subscribe")
        failed = {
            str(e.get("email_address", "")).lower(): f"{e.get('error_code', 'ERROR')}: {e.get('error', '')}"
            for e in response.json().get("errors") or []
        }
        unknown = set(failed) - {m["email_address"] for _, m in kept}
        if unknown:
            raise BatchRejected(
                f"Mailchimp reported errors for addresses not in the batch: {sorted(unknown)[:3]}"
            )
        if operation == "add":
            emails = [m["email_address"] for _, m in kept if m["email_address"] not in failed]
            if emails:
                membership = self.send_request(self._segment_request("members_to_add", emails, context))
                self._raise_for_error(membership, "add to segment")
                for email, reason in self._segment_errors(membership.json()).items():
                    failed.setdefault(email, reason)
        return results + self._results(kept, failed, response.status_code)

    @staticmethod
    def _segment_errors(body: Mapping[str, Any]) -> dict[str, str]:
        failed: dict[str, str] = {}
        for error in body.get("errors") or []:
            for email in error.get("email_addresses") or []:
                failed[str(email).lower()] = str(error.get("error") or "not added to the segment")
        return failed

    @staticmethod
    def _results(
        kept: list[tuple[Record, dict[str, Any]]], failed: Mapping[str, str], status: int
    ) -> list[RecordResult]:
        return [
            RecordResult(
                record.key,
                ok=m["email_address"] not in failed,
                http_status=status,
                reason=failed.get(m["email_address"]),
            )
            for record, m in kept
        ]
