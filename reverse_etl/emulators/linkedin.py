"""LinkedIn Marketing API emulator: DMP segments and their users (Rest.li 2.0, versioned).

Behaviour follows LinkedIn's: every call needs ``LinkedIn-Version`` (an active YYYYMM, else 426) and
``X-Restli-Protocol-Version: 2.0.0``; the users endpoint needs ``X-RestLi-Method: BATCH_CREATE`` and
takes at most 5,000 elements; per-element results come back in order inside a 200; segment creation
answers 201 with the id in ``x-linkedin-id``; request errors use the Rest.li envelope
``{"status", "serviceErrorCode", "code", "message"}``; throttling is 429 without Retry-After.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, ClassVar
from urllib.parse import unquote

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

MAX_ELEMENTS = 5_000
OLDEST_VERSION = "202504"  # versions are supported for about a year
NEWEST_VERSION = "202612"
ID_TYPES = {
    "SHA256_EMAIL": re.compile(r"^[0-9a-f]{64}$"),
    "SHA512_EMAIL": re.compile(r"^[0-9a-f]{128}$"),
    "GOOGLE_AID": re.compile(r"^[0-9a-f-]{36}$|^[0-9a-z-]{8,64}$"),
}
CREATE_REQUIRED = ("name", "sourcePlatform", "account", "type", "destinations", "accessPolicy")
CREATE_ENUMS = {
    "sourcePlatform": {"STREAMING", "LIST_UPLOAD"},
    "type": {"USER_STREAMING", "COMPANY_STREAMING", "USER_LIST_UPLOAD", "COMPANY_LIST_UPLOAD"},
    "accessPolicy": {"PRIVATE", "PUBLIC"},
}
ELEMENT_KEYS = frozenset({"action", "userIds", "firstName", "lastName", "title", "company", "country"})


def restli_error(status: int, code: str, message: str, service_code: int = 100) -> Response:
    return Response(
        status, {"status": status, "serviceErrorCode": service_code, "code": code, "message": message}
    )


class LinkedInEmulator(Emulator):
    name = "linkedin"
    default_credentials: ClassVar[dict[str, str]] = {"access_token": "li-test-token"}

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        access_token: str = "li-test-token",
        ad_account_id: str = "512345678",
        **kwargs: Any,
    ) -> None:
        super().__init__(faults, **kwargs)
        self.access_token = access_token
        self.accounts = {f"urn:li:sponsoredAccount:{ad_account_id}"}
        self.segments: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(8800001)

    # -- inspection ------------------------------------------------------------------------------

    def members(self, segment_id: str, id_type: str = "SHA256_EMAIL") -> set[str]:
        with self.lock:
            return {value for kind, value in self.segments[segment_id]["members"] if kind == id_type}

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return self.authenticate_failure()
        version = request.headers.get("linkedin-version")
        if not version:
            return restli_error(
                400,
                "VERSION_MISSING",
                "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
            )
        if not re.fullmatch(r"\d{6}", version) or not OLDEST_VERSION <= version <= NEWEST_VERSION:
            return restli_error(426, "NONEXISTENT_VERSION", f"Requested version {version} is not active")
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return restli_error(400, "ILLEGAL_ARGUMENT", "X-Restli-Protocol-Version 2.0.0 is required")
        return None

    def authenticate_failure(self) -> Response:
        return restli_error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)

    def throttle_response(self) -> Response:
        return restli_error(
            429,
            "TOO_MANY_REQUESTS",
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
            101,
        )

    def server_error_response(self) -> Response:
        return restli_error(503, "SERVICE_UNAVAILABLE", "Service unavailable")

    # -- routes ----------------------------------------------------------------------------------

    @route("GET", "/dmpSegments")
    def find_segments(self, request: Request) -> Response:
        query = {k: v[0] for k, v in request.query.items()}
        if query.get("q") != "account" or "account" not in query:
            return restli_error(400, "ILLEGAL_ARGUMENT", "finder q=account with an account URN is required")
        account = unquote(query["account"])
        if account not in self.accounts:
            return restli_error(403, "ACCESS_DENIED", f"Not enough permissions to access {account}", 100)
        start, count = int(query.get("start", 0)), int(query.get("count", 10))
        found = [
            {"id": int(sid), **{k: v for k, v in s.items() if k != "members"}}
            for sid, s in self.segments.items()
            if s["account"] == account
        ]
        return Response(
            200,
            {
                "elements": found[start : start + count],
                "paging": {"start": start, "count": count, "total": len(found)},
            },
        )

    @route("POST", "/dmpSegments")
    def create_segment(self, request: Request) -> Response:
        body = request.json() if request.body else None
        if not isinstance(body, dict):
            return restli_error(400, "ILLEGAL_ARGUMENT", "body must be an object")
        missing = [f for f in CREATE_REQUIRED if not body.get(f)]
        if missing:
            return restli_error(
                422, "FIELD_VALUE_MISSING", f"/{missing[0]} :: field is required but not found"
            )
        for field, allowed in CREATE_ENUMS.items():
            if body[field] not in allowed:
                return restli_error(
                    422, "INVALID_ENUM_VALUE", f"/{field} :: {body[field]} is not one of {sorted(allowed)}"
                )
        if body["account"] not in self.accounts:
            return restli_error(403, "ACCESS_DENIED", f"Not enough permissions to access {body['account']}")
        if body["destinations"] != [{"destination": "LINKEDIN"}]:
            return restli_error(422, "INVALID_VALUE", "/destinations :: only LINKEDIN is supported")
        segment_id = str(next(self._ids))
        self.segments[segment_id] = {
            "name": body["name"],
            "account": body["account"],
            "sourcePlatform": body["sourcePlatform"],
            "sourceSegmentId": body.get("sourceSegmentId"),
            "type": body["type"],
            "status": "BUILDING",
            "members": set(),
        }
        return Response(201, None, {"x-linkedin-id": segment_id, "x-restli-id": segment_id})

    @route("POST", "/dmpSegments/{segment_id}/users")
    def users(self, request: Request) -> Response:
        if request.headers.get("x-restli-method", "").upper() != "BATCH_CREATE":
            return restli_error(
                400, "ILLEGAL_ARGUMENT", "X-RestLi-Method: BATCH_CREATE is required for batch calls"
            )
        segment = self.segments.get(request.params["segment_id"])
        if segment is None:
            return restli_error(
                404, "NOT_FOUND", f"DMP segment {request.params['segment_id']} does not exist"
            )
        body = request.json() if request.body else None
        elements = body.get("elements") if isinstance(body, dict) else None
        if not isinstance(elements, list):
            return restli_error(400, "ILLEGAL_ARGUMENT", 'body must be {"elements": [...]}')
        if len(elements) > MAX_ELEMENTS:
            return restli_error(
                422,
                "BATCH_SIZE_EXCEEDED",
                f"at most {MAX_ELEMENTS} elements per request; got {len(elements)}",
            )
        results = []
        for element in elements:
            problem = self._element_problem(element)
            if problem:
                results.append({"status": 400, "error": {"message": problem, "status": 400}})
                continue
            keys = [(u["idType"], u["idValue"]) for u in element.get("userIds") or []]
            if not keys:
                keys = [("NAME", f"{element['firstName'].lower()}|{element['lastName'].lower()}")]
            if element["action"] == "ADD":
                segment["members"].update(keys)
            else:
                segment["members"].difference_update(keys)
            results.append({"status": 201})
        segment["status"] = "UPDATING"
        return Response(200, {"elements": results})

    def _element_problem(self, element: Any) -> str | None:
        if not isinstance(element, dict):
            return "element must be an object"
        unknown = sorted(set(element) - ELEMENT_KEYS)
        if unknown:
            return f"/{unknown[0]} :: unrecognized field"
        if element.get("action") not in ("ADD", "REMOVE"):
            return "/action :: must be ADD or REMOVE"
        user_ids = element.get("userIds") or []
        for user_id in user_ids:
            kind, value = user_id.get("idType"), user_id.get("idValue")
            if kind not in ID_TYPES:
                return f"/userIds/idType :: {kind} is not one of {sorted(ID_TYPES)}"
            if not isinstance(value, str) or not ID_TYPES[kind].match(value):
                return f"/userIds/idValue :: not a valid {kind}"
            if value in self.faults.reject_values:
                return f"/userIds/idValue :: {kind} value is not allowed"
        if not user_ids and not (element.get("firstName") and element.get("lastName")):
            return "firstName and lastName are required when no userIds are given"
        return None
