"""Iterable users and static lists.

API: ``POST /api/users/bulkUpdate`` upserts users (``{"users": [{"email"|"userId", "dataFields"}]}``,
fields merged into the profile); ``POST /api/lists/subscribe`` and ``/api/lists/unsubscribe`` add and
remove list members (creating users that do not exist on subscribe); ``GET``/``POST /api/lists`` find and
create the list. Auth is the ``Api-Key`` header (a server-side key). A project identifies people by
email or by userId, which the ``identifier`` setting follows.
Batch limit: 1,000 users and 4 MB per bulk request. Rate limit: 5 requests/s per project for
bulkUpdate, more for the list calls; over it Iterable answers 429 with ``code: RateLimitExceeded`` and no
documented wait.

Answers are 200 with ``successCount``/``failCount`` and ``failedUpdates`` that name the failed users by
email or userId (``invalidEmails``, ``conflictUserIds``, ``forgottenEmails`` ...), which map back to
records; users not found on unsubscribe are already off the list.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

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

DEFAULT_BASE_URL = "https://api.iterable.com"
IDENTIFIERS = ("email", "userId")
MAX_BYTES = 4_000_000
RESERVED = frozenset({"email", "user_id", "userId"})


def data_value(value: Any) -> Any:
    """Iterable dates are ``yyyy-MM-dd HH:mm:ss ZZ`` strings; everything else is JSON."""
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S %z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class IterableUsers(Destination):
    name = "iterable"
    title = "Iterable users and lists"
    modes = ("upsert", "audience")
    limits = Limits(
        max_batch_size=1_000, requests_per_second=5.0, max_concurrency=1, max_payload_bytes=MAX_BYTES
    )
    identifier_fields = ("email", "user_id")
    settings_spec = (
        SettingSpec("api_key", secret=True, help="env var holding a server-side API key"),
        SettingSpec(
            "identifier",
            required=False,
            default="email",
            help="how the project identifies users: email or userId",
        ),
        SettingSpec(
            "list_id", required=False, help="static list for audience mode; found or created by name"
        ),
        SettingSpec(
            "list_name", required=False, help="static list name for audience mode (default: sync name)"
        ),
        SettingSpec(
            "base_url",
            required=False,
            default=DEFAULT_BASE_URL,
            help="https://api.iterable.com or api.eu.iterable.com",
        ),
    )

    def __init__(self, settings: Mapping[str, Any], *, source: str = "<settings>") -> None:
        super().__init__(settings, source=source)
        if self.settings["identifier"] not in IDENTIFIERS:
            raise ConfigError(
                f"{source}: identifier {self.settings['identifier']!r} must be email or userId (the project type)"
            )

    # -- identifiers -----------------------------------------------------------------------------

    @property
    def _by_email(self) -> bool:
        return self.settings["identifier"] == "email"

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """One identifier per user, the project's: Iterable refuses users that carry the wrong one."""
        user: dict[str, Any] = {}
        if self._by_email:
            email = hashing.normalise_email(fields.get("email"))
            if email is None:
                return None, "no valid email (the project identifies users by email)"
            user["email"] = email
        else:
            user_id = str(fields.get("userId") or fields.get("user_id") or "").strip()
            if not user_id:
                return None, "no user_id (the project identifies users by userId)"
            user["userId"] = user_id
            user["preferUserId"] = True
        data = {k: data_value(v) for k, v in fields.items() if k not in RESERVED}
        if not self._by_email and hashing.normalise_email(fields.get("email")):
            data["email"] = hashing.normalise_email(fields.get("email"))
        if data:
            user["dataFields"] = data
        return user, None

    def match_keys(self, fields: Mapping[str, Any]) -> frozenset[str]:
        """Lists hold users by the project's identifier. In an email project a new email is another
        user, so the old one must be unsubscribed; in a userId project the email is a field of the
        same user and a change is an update."""
        return frozenset({self._ident(fields)})

    def _ident(self, user: Mapping[str, Any]) -> str:
        return str(user["email"] if self._by_email else user["userId"]).lower()

    # -- requests --------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{str(self.settings['base_url']).rstrip('/')}/api/{path.lstrip('/')}"

    def _headers(self) -> dict[str, str]:
        return {"Api-Key": str(self.settings["api_key"]), "Content-Type": "application/json"}

    def _list_id(self, context: SyncContext, *, planning: bool = False) -> int | str:
        list_id = context.state.get("list_id") or self.settings.get("list_id")
        if list_id:
            return int(list_id)
        if planning:
            return "{list_id}"
        raise TerminalError(
            f"{self.source}: no Iterable list id; prepare() was not run or list creation failed"
        )

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        self._check_batch_size(records, "Iterable's {limit} users per request")
        users = [u for _, u in self._normalised(records)[0]]
        if operation in ("upsert", "update"):
            return "POST", self._url("users/bulkUpdate"), self._headers(), {"users": users}
        if operation == "add":
            body = {
                "listId": self._list_id(context, planning=True),
                "subscribers": users,
                "updateExistingUsersOnly": False,
            }
            return "POST", self._url("lists/subscribe"), self._headers(), body
        if operation == "remove":
            ids = [{k: u[k] for k in ("email", "userId") if k in u} for u in users]
            body = {
                "listId": self._list_id(context, planning=True),
                "subscribers": ids,
                "channelUnsubscribe": False,
            }
            return "POST", self._url("lists/unsubscribe"), self._headers(), body
        raise ValueError(f"Iterable cannot '{operation}'; use upsert, add or remove")

    def _raise_for_error(self, response: requests.Response, action: str) -> None:
        if response.ok:
            return
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        code = str(body.get("code") or "")
        message = (
            f"Iterable {action}: HTTP {response.status_code} {code}: {body.get('msg') or response.text[:200]}"
        )
        status = response.status_code
        if status == 429 or code == "RateLimitExceeded":
            raise TransientError(message, retry_after=retry_after_seconds(response), http_status=status)
        if status >= 500 or code == "DatabaseError":
            raise TransientError(message, http_status=status)
        if status in (401, 403) or code in (
            "BadApiKey",
            "BadAuthorizationHeader",
            "Unauthorized",
            "Forbidden",
        ):
            raise TerminalError(
                f"{message} (check the API key: a server-side key of this project)", http_status=status
            )
        if status == 404 or code == "NotFound":
            raise TerminalError(f"{message} (the list does not exist)", http_status=status)
        raise BatchRejected(message, http_status=status)

    # -- the contract ----------------------------------------------------------------------------

    def _lists(self) -> list[dict[str, Any]]:
        response = self.send_request(("GET", self._url("lists"), self._headers(), None))
        self._raise_for_error(response, "get lists")
        return list(response.json().get("lists") or [])

    def check(self) -> CheckResult:
        try:
            self._lists()
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, "lists readable")

    def prepare(self, context: SyncContext) -> None:
        if context.mode != "audience":
            return
        if self.settings.get("list_id"):
            context.state["list_id"] = int(self.settings["list_id"])
            return
        name = str(self.settings.get("list_name") or context.sync_name)
        if context.state.get("list_id") and context.state.get("list_name") == name:
            return
        found = next((item for item in self._lists() if item.get("name") == name), None)
        if found:
            context.state.update(list_id=int(found["id"]), list_name=name)
            return
        response = self.send_request(("POST", self._url("lists"), self._headers(), {"name": name}))
        self._raise_for_error(response, "create list")
        context.state.update(list_id=int(response.json()["listId"]), list_name=name)

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, results = self._normalised(records)
        if not kept:
            return results
        if operation in ("add", "remove"):
            self._list_id(context)
        request = self.build_request(operation, [r for r, _ in kept], context)
        size = len(json.dumps(request[3], default=str).encode())
        if size > MAX_BYTES and len(kept) > 1:
            raise BatchRejected(
                f"request of {size} bytes is over Iterable's 4 MB; splitting", http_status=413
            )
        response = self.send_request(request)
        self._raise_for_error(response, operation)
        body = response.json()
        failed = self._failures(body, ignore_not_found=operation == "remove")
        if int(body.get("failCount") or 0) > 0 and not failed and operation != "remove":
            raise BatchRejected(f"Iterable failed {body['failCount']} users without naming them")
        for record, user in kept:
            reason = failed.get(self._ident(user))
            results.append(
                RecordResult(record.key, ok=reason is None, http_status=response.status_code, reason=reason)
            )
        return results

    @staticmethod
    def _failures(body: Mapping[str, Any], *, ignore_not_found: bool) -> dict[str, str]:
        """Identifier (lower-cased) -> which failedUpdates list named it."""
        failed: dict[str, str] = {}
        groups = dict(body.get("failedUpdates") or {})
        for legacy in ("invalidEmails", "invalidUserIds"):
            groups.setdefault(legacy, body.get(legacy) or [])
        for group, values in groups.items():
            if ignore_not_found and group.startswith("notFound"):
                continue
            for value in values or []:
                failed.setdefault(str(value).lower(), group)
        return failed
