"""Mailchimp Marketing API v3 emulator: audiences (lists), members by subscriber hash, static segments.

Behaviour follows Mailchimp's: Basic (any user, key as password) or Bearer auth; at most 500 members per
batch call and 500 addresses per segment array (400 "Invalid Resource" beyond); batch calls answer 200
with per-member ``errors[]``; a member who unsubscribed or was cleaned cannot be re-subscribed
("Member In Compliance State"); segment additions ignore addresses that are not on the list; errors are
problem+json; more than 10 simultaneous requests get 429 with no Retry-After.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import re
import threading
import uuid
from typing import Any, ClassVar

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

MAX_MEMBERS = 500
MAX_CONNECTIONS = 10
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
MEMBER_KEYS = frozenset(
    {
        "email_address",
        "email_type",
        "status",
        "merge_fields",
        "interests",
        "language",
        "vip",
        "location",
        "ip_signup",
        "timestamp_signup",
        "ip_opt",
        "timestamp_opt",
        "tags",
    }
)
MERGE_TAG_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,9}$")


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
        **extra,
    }
    return Response(status, body, {"Content-Type": "application/problem+json"})


def _hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


class MailchimpEmulator(Emulator):
    name = "mailchimp"
    default_credentials: ClassVar[dict[str, str]] = {"api_key": "mc-test-key-us6"}

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        api_key: str = "mc-test-key-us6",
        list_id: str = "a1b2c3d4e5",
        **kwargs: Any,
    ) -> None:
        super().__init__(faults, **kwargs)
        self.api_key = api_key
        self.lists: dict[str, dict[str, Any]] = {list_id: {"name": "Emulated audience", "members": {}}}
        self.segments: dict[str, dict[int, dict[str, Any]]] = {list_id: {}}
        self._segment_ids = itertools.count(1001)
        self._active = 0
        self._active_lock = threading.Lock()

    # -- inspection ------------------------------------------------------------------------------

    def member(self, list_id: str, email: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.lists[list_id]["members"].get(_hash(email))
            return dict(found) if found else None

    def segment_emails(self, list_id: str, segment_id: str | int) -> set[str]:
        with self.lock:
            members = self.lists[list_id]["members"]
            return {members[h]["email_address"] for h in self.segments[list_id][int(segment_id)]["members"]}

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        key = ""
        if header.startswith("Basic "):
            try:
                key = base64.b64decode(header[6:]).decode().split(":", 1)[1]
            except (ValueError, IndexError):
                key = ""
        elif header.startswith("Bearer "):
            key = header[7:]
        if key != self.api_key:
            return self.authenticate_failure()
        return None

    def authenticate_failure(self) -> Response:
        return problem(
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        )

    def throttle_response(self) -> Response:
        return problem(
            429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections."
        )

    def server_error_response(self) -> Response:
        return problem(500, "Internal Server Error", "An unexpected internal error has occurred.")

    def dispatch(self, request: Request) -> Response:
        """Mailchimp limits simultaneous connections, not requests per second."""
        with self._active_lock:
            self._active += 1
            over = self._active > MAX_CONNECTIONS
        try:
            if over:
                with self.lock:
                    self.request_count += 1
                    self.requests.append(request)
                return self.throttle_response()
            return super().dispatch(request)
        finally:
            with self._active_lock:
                self._active -= 1

    # -- routes ----------------------------------------------------------------------------------

    @route("GET", "/ping")
    def ping(self, request: Request) -> Response:
        return Response(200, {"health_status": "Everything's Chimpy!"})

    @route("GET", "/lists/{list_id}")
    def get_list(self, request: Request) -> Response:
        audience = self.lists.get(request.params["list_id"])
        if audience is None:
            return self._not_found()
        return Response(
            200,
            {
                "id": request.params["list_id"],
                "name": audience["name"],
                "stats": {"member_count": len(audience["members"])},
            },
        )

    @route("POST", "/lists/{list_id}")
    def batch_members(self, request: Request) -> Response:
        list_id = request.params["list_id"]
        audience = self.lists.get(list_id)
        if audience is None:
            return self._not_found()
        body, error = self._json(request)
        if error:
            return error
        members = body.get("members")
        if not isinstance(members, list):
            return problem(
                400,
                "Invalid Resource",
                "The resource submitted could not be validated.",
                errors=[{"field": "members", "message": "Schema describes array, object found instead"}],
            )
        if len(members) > MAX_MEMBERS:
            return problem(
                400, "Invalid Resource", f"members: at most {MAX_MEMBERS} items; got {len(members)}"
            )
        unknown = sorted(set(body) - {"members", "update_existing", "sync_tags"})
        if unknown:
            return problem(400, "Invalid Resource", f"unknown property {unknown[0]!r}")
        update = bool(body.get("update_existing"))
        new, updated, errors = [], [], []
        for item in members:
            if not isinstance(item, dict):
                return problem(400, "Invalid Resource", "members items must be objects")
            bad = sorted(set(item) - MEMBER_KEYS)
            if bad or not item.get("email_address") or item.get("status") not in STATUSES:
                field = bad[0] if bad else ("email_address" if not item.get("email_address") else "status")
                return problem(
                    400,
                    "Invalid Resource",
                    "The resource submitted could not be validated.",
                    errors=[{"field": field, "message": "Schema describes a different value"}],
                )
            email = str(item["email_address"])
            reason = self._member_problem(item, audience, update)
            if reason:
                code, message, field = reason
                errors.append(
                    {
                        "email_address": email,
                        "error": message,
                        "error_code": code,
                        "field": field,
                        "field_message": message,
                    }
                )
                continue
            key = _hash(email)
            existing = audience["members"].get(key)
            member = existing or {
                "id": key,
                "email_address": email.lower(),
                "list_id": list_id,
                "timestamp_signup": _now(),
                "merge_fields": {},
            }
            member["status"] = item["status"]
            member["merge_fields"] = {**member["merge_fields"], **(item.get("merge_fields") or {})}
            for name in ("language", "vip", "email_type"):
                if name in item:
                    member[name] = item[name]
            member["last_changed"] = _now()
            audience["members"][key] = member
            (updated if existing else new).append(dict(member))
        return Response(
            200,
            {
                "new_members": new,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(new),
                "total_updated": len(updated),
                "error_count": len(errors),
            },
        )

    def _member_problem(
        self, item: dict[str, Any], audience: dict[str, Any], update: bool
    ) -> tuple[str, str, str] | None:
        email = str(item["email_address"])
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            return (
                "ERROR_GENERIC",
                f"{email} looks fake or invalid, please enter a real email address.",
                "email_address",
            )
        values = [email, *(str(v) for v in (item.get("merge_fields") or {}).values())]
        if any(v in self.faults.reject_values for v in values):
            return (
                "ERROR_GENERIC",
                f"{email} was permanently deleted and cannot be re-imported.",
                "email_address",
            )
        bad_tags = [t for t in item.get("merge_fields") or {} if not MERGE_TAG_RE.match(t)]
        if bad_tags:
            return "ERROR_GENERIC", f"Your merge fields were invalid: {bad_tags[0]}", bad_tags[0]
        existing = audience["members"].get(_hash(email))
        if existing and not update:
            return "ERROR_CONTACT_EXISTS", f"{email} is already a list member.", "email_address"
        if (
            existing
            and existing["status"] in ("unsubscribed", "cleaned")
            and item["status"] in ("subscribed", "pending")
        ):
            return (
                "ERROR_GENERIC",
                f"{email} is in a compliance state due to unsubscribe, bounce, or compliance "
                "review and cannot be subscribed.",
                "status",
            )
        return None

    @route("GET", "/lists/{list_id}/segments")
    def list_segments(self, request: Request) -> Response:
        list_id = request.params["list_id"]
        if list_id not in self.lists:
            return self._not_found()
        kind = (request.query.get("type") or [None])[0]
        count = int((request.query.get("count") or ["10"])[0])
        offset = int((request.query.get("offset") or ["0"])[0])
        if count > 1000:
            return problem(400, "Invalid Resource", "count: at most 1000")
        found = [
            {
                "id": sid,
                "name": s["name"],
                "type": s["type"],
                "member_count": len(s["members"]),
                "list_id": list_id,
            }
            for sid, s in self.segments[list_id].items()
            if kind in (None, s["type"])
        ]
        return Response(
            200, {"segments": found[offset : offset + count], "list_id": list_id, "total_items": len(found)}
        )

    @route("POST", "/lists/{list_id}/segments")
    def create_segment(self, request: Request) -> Response:
        list_id = request.params["list_id"]
        if list_id not in self.lists:
            return self._not_found()
        body, error = self._json(request)
        if error:
            return error
        if not isinstance(body.get("name"), str) or not body["name"]:
            return problem(400, "Invalid Resource", "name: This value should not be blank.")
        if "static_segment" not in body and "options" not in body:
            return problem(
                400, "Invalid Resource", "give static_segment (a tag) or options (a saved segment)"
            )
        emails = [str(e).lower() for e in body.get("static_segment") or []]
        members = {h for h in map(_hash, emails) if h in self.lists[list_id]["members"]}
        segment_id = next(self._segment_ids)
        self.segments[list_id][segment_id] = {"name": body["name"], "type": "static", "members": members}
        return Response(
            200,
            {
                "id": segment_id,
                "name": body["name"],
                "type": "static",
                "member_count": len(members),
                "list_id": list_id,
            },
        )

    @route("POST", "/lists/{list_id}/segments/{segment_id}")
    def segment_members(self, request: Request) -> Response:
        list_id = request.params["list_id"]
        segment = self.segments.get(list_id, {}).get(
            int(request.params["segment_id"]) if request.params["segment_id"].isdigit() else -1
        )
        if segment is None:
            return self._not_found()
        body, error = self._json(request)
        if error:
            return error
        unknown = sorted(set(body) - {"members_to_add", "members_to_remove"})
        if unknown:
            return problem(400, "Invalid Resource", f"unknown property {unknown[0]!r}")
        for field in ("members_to_add", "members_to_remove"):
            if len(body.get(field) or []) > MAX_MEMBERS:
                return problem(
                    400,
                    "Invalid Resource",
                    "Maximum allowed member items exceeded, please provide at "
                    f"most {MAX_MEMBERS} items in members_to_add field or members_to_remove field",
                )
        members = self.lists[list_id]["members"]
        added, removed, errors = [], [], []
        for email in body.get("members_to_add") or []:
            key = _hash(str(email))
            if str(email) in self.faults.reject_values:
                errors.append(
                    {"email_addresses": [email], "error": "Email could not be added to the segment"}
                )
            elif key in members:  # addresses that are not on the list are ignored
                segment["members"].add(key)
                added.append({"email_address": members[key]["email_address"], "id": key})
        for email in body.get("members_to_remove") or []:
            key = _hash(str(email))
            if key in segment["members"]:
                segment["members"].discard(key)
                removed.append({"email_address": members[key]["email_address"], "id": key})
        return Response(
            200,
            {
                "members_added": added,
                "members_removed": removed,
                "errors": errors,
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": len(errors),
            },
        )

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _json(request: Request) -> tuple[dict[str, Any], Response | None]:
        try:
            body = request.json()
        except ValueError:
            return {}, problem(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.")
        if not isinstance(body, dict):
            return {}, problem(400, "Invalid Resource", "The request body must be an object.")
        return body, None

    @staticmethod
    def _not_found() -> Response:
        return problem(404, "Resource Not Found", "The requested resource could not be found.")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
