"""Iterable API emulator: users (bulkUpdate) and static lists (create, subscribe, unsubscribe).

Behaviour follows Iterable's: the ``Api-Key`` header (401 ``BadApiKey``); errors are
``{"code", "msg", "params"}``; at most 1,000 users and 4 MB per bulk request (400 ``BatchTooLarge``);
an email-based project refuses users without an email, a userId-based one users without a userId;
per-user failures are listed by identifier in ``failedUpdates`` of a 200; unsubscribing someone not on
the list reports them under ``notFoundEmails``; throttling is 429 ``RateLimitExceeded`` with no headers.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, ClassVar

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

MAX_USERS = 1_000
MAX_BYTES = 4_000_000
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FAILED_GROUPS = (
    "invalidEmails",
    "invalidUserIds",
    "notFoundEmails",
    "notFoundUserIds",
    "forgottenEmails",
    "forgottenUserIds",
    "conflictEmails",
    "conflictUserIds",
    "invalidDataEmails",
    "invalidDataUserIds",
)
USER_KEYS = frozenset({"email", "userId", "dataFields", "preferUserId", "mergeNestedObjects"})


def iterable_error(status: int, code: str, msg: str) -> Response:
    return Response(status, {"code": code, "msg": msg, "params": None})


class IterableEmulator(Emulator):
    name = "iterable"
    default_credentials: ClassVar[dict[str, str]] = {"api_key": "it-test-key"}

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        api_key: str = "it-test-key",
        identifier: str = "email",
        **kwargs: Any,
    ) -> None:
        super().__init__(faults, **kwargs)
        self.api_key = api_key
        self.identifier = identifier  # the project type: email or userId
        self.users: dict[str, dict[str, Any]] = {}  # identifier (lower) -> {"email"/"userId", "dataFields"}
        self.lists: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(300001)

    # -- inspection ------------------------------------------------------------------------------

    def list_members(self, list_id: int | str) -> set[str]:
        with self.lock:
            return set(self.lists[int(list_id)]["members"])

    def user(self, ident: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.users.get(ident.lower())
            return dict(found) if found else None

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("api-key") != self.api_key:
            return self.authenticate_failure()
        return None

    def authenticate_failure(self) -> Response:
        return iterable_error(401, "BadApiKey", "Invalid API key")

    def throttle_response(self) -> Response:
        return iterable_error(429, "RateLimitExceeded", "Rate limit exceeded for this endpoint")

    def server_error_response(self) -> Response:
        return iterable_error(503, "GenericError", "Request timed out; try again")

    # -- helpers ---------------------------------------------------------------------------------

    def _body(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        if len(request.body) > MAX_BYTES:
            return {}, iterable_error(400, "BatchTooLarge", f"Request is larger than {MAX_BYTES} bytes")
        try:
            body = request.json()
        except ValueError:
            return {}, iterable_error(400, "BadJsonBody", "Could not parse the request body as JSON")
        if not isinstance(body, dict):
            return {}, iterable_error(400, "BadJsonBody", "Request body must be an object")
        return body, None

    def _problem(self, user: Any) -> tuple[str, str] | None:
        """(failedUpdates group, identifier) for a user Iterable would refuse."""
        if not isinstance(user, dict):
            return "invalidDataEmails", ""
        email, user_id = user.get("email"), user.get("userId")
        by_email = self.identifier == "email"
        ident = str(email if by_email else user_id or "")
        suffix = "Emails" if by_email else "UserIds"
        if not ident or (by_email and not EMAIL_RE.match(ident)):
            return ("invalid" + suffix), str(email or user_id or "")
        if set(user) - USER_KEYS:
            return ("invalidData" + suffix), ident
        values = [email, user_id, *(v for v in (user.get("dataFields") or {}).values() if isinstance(v, str))]
        if any(v in self.faults.reject_values for v in values if v):
            return ("invalidData" + suffix), ident
        return None

    def _upsert(self, user: dict[str, Any]) -> str:
        key = str(user["email"] if self.identifier == "email" else user["userId"]).lower()
        stored = self.users.setdefault(key, {"dataFields": {}})
        for name in ("email", "userId"):
            if user.get(name):
                stored[name] = user[name]
        stored["dataFields"].update(user.get("dataFields") or {})
        return key

    @staticmethod
    def _reply(success: int, failed: dict[str, list[str]]) -> Response:
        groups = {g: failed.get(g, []) for g in FAILED_GROUPS}
        return Response(
            200,
            {
                "successCount": success,
                "failCount": sum(len(v) for v in groups.values()),
                "createdFields": [],
                "filteredOutFields": [],
                "invalidEmails": groups["invalidEmails"],
                "invalidUserIds": groups["invalidUserIds"],
                "failedUpdates": groups,
            },
        )

    # -- routes ----------------------------------------------------------------------------------

    @route("POST", "/api/users/bulkUpdate")
    def bulk_update(self, request: Request) -> Response:
        body, error = self._body(request)
        if error:
            return error
        users = body.get("users")
        if not isinstance(users, list) or not users:
            return iterable_error(400, "BadParams", "users must be a non-empty array")
        if len(users) > MAX_USERS:
            return iterable_error(
                400, "BatchTooLarge", f"at most {MAX_USERS} users per request; got {len(users)}"
            )
        failed: dict[str, list[str]] = {}
        success = 0
        for user in users:
            problem = self._problem(user)
            if problem:
                failed.setdefault(problem[0], []).append(problem[1])
                continue
            self._upsert(user)
            success += 1
        return self._reply(success, failed)

    @route("GET", "/api/lists")
    def get_lists(self, request: Request) -> Response:
        lists = [
            {"id": i, "name": v["name"], "createdAt": v["createdAt"], "listType": "Standard"}
            for i, v in self.lists.items()
        ]
        return Response(200, {"lists": lists})

    @route("POST", "/api/lists")
    def create_list(self, request: Request) -> Response:
        body, error = self._body(request)
        if error:
            return error
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            return iterable_error(400, "BadParams", "name is required")
        list_id = next(self._ids)
        self.lists[list_id] = {"name": body["name"], "createdAt": 1700000000000, "members": set()}
        return Response(200, {"listId": list_id})

    def _list(self, body: dict[str, Any]) -> tuple[dict[str, Any] | None, Response | None]:
        list_id = body.get("listId")
        if not isinstance(list_id, int) or isinstance(list_id, bool):
            return None, iterable_error(400, "BadParams", "listId must be an integer")
        if list_id not in self.lists:
            return None, iterable_error(400, "BadParams", f"List {list_id} does not exist")
        subscribers = body.get("subscribers")
        if not isinstance(subscribers, list) or not subscribers:
            return None, iterable_error(400, "BadParams", "subscribers must be a non-empty array")
        if len(subscribers) > MAX_USERS:
            return None, iterable_error(400, "BatchTooLarge", f"at most {MAX_USERS} subscribers per request")
        return self.lists[list_id], None

    @route("POST", "/api/lists/subscribe")
    def subscribe(self, request: Request) -> Response:
        body, error = self._body(request)
        if error:
            return error
        target, error = self._list(body)
        if error or target is None:
            return error or iterable_error(400, "BadParams", "no list")
        existing_only = bool(body.get("updateExistingUsersOnly"))
        failed: dict[str, list[str]] = {}
        success = 0
        for user in body["subscribers"]:
            problem = self._problem(user)
            if problem:
                failed.setdefault(problem[0], []).append(problem[1])
                continue
            key = str(user.get("email") if self.identifier == "email" else user.get("userId")).lower()
            if existing_only and key not in self.users:
                group = "notFoundEmails" if self.identifier == "email" else "notFoundUserIds"
                failed.setdefault(group, []).append(key)
                continue
            target["members"].add(self._upsert(user))
            success += 1
        return self._reply(success, failed)

    @route("POST", "/api/lists/unsubscribe")
    def unsubscribe(self, request: Request) -> Response:
        body, error = self._body(request)
        if error:
            return error
        target, error = self._list(body)
        if error or target is None:
            return error or iterable_error(400, "BadParams", "no list")
        failed: dict[str, list[str]] = {}
        success = 0
        group = "notFoundEmails" if self.identifier == "email" else "notFoundUserIds"
        for user in body["subscribers"]:
            key = str(user.get("email") if self.identifier == "email" else user.get("userId") or "").lower()
            if key in target["members"]:
                target["members"].discard(key)
                success += 1
            else:
                failed.setdefault(group, []).append(key)
        return self._reply(success, failed)
