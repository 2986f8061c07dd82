"""Customer.io emulator: the Track API (v2 batch identify, manual segment membership, region) and the
two App API calls that list and create manual segments.

Behaviour follows Customer.io's: Track API calls use HTTP Basic ``site_id:api_key`` and App API calls a
Bearer app key, each refused with 401 otherwise; a v2 batch is at most 500 KB with 32 KB per entry, and
entries it cannot take are listed in ``errors[]`` by ``batch_index`` (the request fails with 400 when none
succeeded); identify takes at most 300 attributes with names up to 150 bytes and values up to 1,000 bytes;
a manual segment call takes at most 1,000 ids and ignores people who do not exist; v1 errors are
``{"meta": {"error": ...}}``; throttling is 429 with no headers.
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any, ClassVar

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

MAX_REQUEST_BYTES = 500_000
MAX_ENTRY_BYTES = 32_000
MAX_IDS = 1_000
MAX_ATTRIBUTES = 300
ID_TYPES = ("id", "email", "cio_id")


def meta_error(status: int, message: str) -> Response:
    return Response(status, {"meta": {"error": message}})


class CustomerIoEmulator(Emulator):
    name = "customerio"
    default_credentials: ClassVar[dict[str, str]] = {"api_key": "cio-track-key", "app_api_key": "cio-app-key"}

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        site_id: str = "site-123",
        api_key: str = "cio-track-key",
        app_api_key: str = "cio-app-key",
        **kwargs: Any,
    ) -> None:
        super().__init__(faults, **kwargs)
        self.site_id = site_id
        self.api_key = api_key
        self.app_api_key = app_api_key
        self.people: dict[str, dict[str, Any]] = {}  # cio_id -> {"id", "email", "attributes"}
        self.segments: dict[int, dict[str, Any]] = {}
        self._cio_ids = itertools.count(1)
        self._segment_ids = itertools.count(41)

    # -- inspection ------------------------------------------------------------------------------

    def segment_members(self, segment_id: int | str, id_type: str = "id") -> set[str]:
        with self.lock:
            return {self.people[c].get(id_type) for c in self.segments[int(segment_id)]["members"]}

    def person(self, id_type: str, value: str) -> dict[str, Any] | None:
        with self.lock:
            cio_id = self._find(id_type, value)
            return dict(self.people[cio_id]) if cio_id else None

    def _find(self, id_type: str, value: str) -> str | None:
        if id_type == "cio_id":
            return value if value in self.people else None
        return next(
            (c for c, p in self.people.items() if str(p.get(id_type) or "").lower() == value.lower()), None
        )

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if request.path.startswith("/v1/"):
            if header != f"Bearer {self.app_api_key}":
                return Response(401, {"errors": [{"detail": "unauthorized", "status": "401"}]})
            return None
        expected = base64.b64encode(f"{self.site_id}:{self.api_key}".encode()).decode()
        if header != f"Basic {expected}":
            return self.authenticate_failure()
        return None

    def authenticate_failure(self) -> Response:
        return meta_error(401, "Unauthorized request")

    def throttle_response(self) -> Response:
        return meta_error(429, "Too many requests")

    def server_error_response(self) -> Response:
        return meta_error(503, "Service unavailable")

    # -- Track API -------------------------------------------------------------------------------

    @route("GET", "/api/v1/accounts/region")
    def region(self, request: Request) -> Response:
        return Response(
            200,
            {"url": "https://track.customer.io", "data_center": "us", "environment_id": 1, "region": "us"},
        )

    @route("POST", "/api/v2/batch")
    def batch(self, request: Request) -> Response:
        if len(request.body) > MAX_REQUEST_BYTES:
            return meta_error(413, f"request body is larger than {MAX_REQUEST_BYTES} bytes")
        try:
            body = request.json()
        except ValueError:
            return meta_error(400, "invalid JSON")
        entries = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            return meta_error(400, "batch must be a non-empty array")
        errors = []
        for index, entry in enumerate(entries):
            problem = self._entry_problem(entry)
            if problem:
                reason, field, message = problem
                errors.append({"batch_index": index, "reason": reason, "field": field, "message": message})
                continue
            self._apply(entry)
        if errors and len(errors) == len(entries):
            return Response(400, {"errors": errors})
        return Response(200, {"errors": errors} if errors else {})

    def _entry_problem(self, entry: Any) -> tuple[str, str, str] | None:
        if not isinstance(entry, dict) or entry.get("type") != "person":
            return "invalid", "type", "type must be person"
        if len(json.dumps(entry).encode()) > MAX_ENTRY_BYTES:
            return "too_large", "", f"entry is larger than {MAX_ENTRY_BYTES} bytes"
        identifiers = entry.get("identifiers")
        if (
            not isinstance(identifiers, dict)
            or len(identifiers) != 1
            or next(iter(identifiers)) not in ID_TYPES
        ):
            return "invalid", "identifiers", "identifiers must hold exactly one of id, email, cio_id"
        value = next(iter(identifiers.values()))
        if not isinstance(value, str) or not value.strip():
            return "required", "identifiers", "identifier cannot be blank"
        if entry.get("action") not in ("identify", "delete"):
            return "invalid", "action", "action must be identify or delete"
        attributes = entry.get("attributes") or {}
        if not isinstance(attributes, dict):
            return "invalid", "attributes", "attributes must be an object"
        if len(attributes) > MAX_ATTRIBUTES:
            return "too_many", "attributes", f"at most {MAX_ATTRIBUTES} attributes"
        for name, attr in attributes.items():
            if len(name.encode()) > 150:
                return "too_long", name[:40], "attribute names are at most 150 bytes"
            if attr is not None and len(json.dumps(attr).encode()) > 1000:
                return "too_long", name, "attribute values are at most 1000 bytes"
        values = [value, *(v for v in attributes.values() if isinstance(v, str))]
        if any(v in self.faults.reject_values for v in values):
            return "invalid", "identifiers", f"{value} is suppressed"
        return None

    def _apply(self, entry: dict[str, Any]) -> None:
        id_type, value = next(iter(entry["identifiers"].items()))
        cio_id = self._find(id_type, value)
        if entry["action"] == "delete":
            if cio_id:
                del self.people[cio_id]
                for segment in self.segments.values():
                    segment["members"].discard(cio_id)
            return
        if cio_id is None:
            cio_id = f"{next(self._cio_ids):x}"
            self.people[cio_id] = {"cio_id": cio_id, "attributes": {}}
        person = self.people[cio_id]
        if id_type != "cio_id":
            person[id_type] = value
        for name, attr in (entry.get("attributes") or {}).items():
            if attr in (None, ""):  # an empty value removes the attribute
                person["attributes"].pop(name, None)
            else:
                person["attributes"][name] = attr
            if name == "email" and attr:
                person["email"] = attr

    @route("POST", "/api/v1/segments/{segment_id}/add_customers")
    def add_customers(self, request: Request) -> Response:
        return self._membership(request, add=True)

    @route("POST", "/api/v1/segments/{segment_id}/remove_customers")
    def remove_customers(self, request: Request) -> Response:
        return self._membership(request, add=False)

    def _membership(self, request: Request, *, add: bool) -> Response:
        raw = request.params["segment_id"]
        segment = self.segments.get(int(raw)) if raw.isdigit() else None
        if segment is None:
            return meta_error(404, f"segment {raw} not found")
        if segment["type"] != "manual":
            return meta_error(400, "people can only be added to or removed from manual segments")
        id_type = (request.query.get("id_type") or ["id"])[0]
        if id_type not in ID_TYPES:
            return meta_error(400, f"id_type must be one of {', '.join(ID_TYPES)}")
        try:
            body = request.json()
        except ValueError:
            return meta_error(400, "invalid JSON")
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids:
            return meta_error(400, "ids must be a non-empty array")
        if len(ids) > MAX_IDS:
            return meta_error(400, f"at most {MAX_IDS} ids per request; got {len(ids)}")
        for value in ids:
            cio_id = self._find(id_type, str(value))
            if cio_id is None:
                continue  # people who do not exist are ignored
            if add:
                segment["members"].add(cio_id)
            else:
                segment["members"].discard(cio_id)
        return Response(200, {})

    # -- App API ---------------------------------------------------------------------------------

    @route("GET", "/v1/segments")
    def list_segments(self, request: Request) -> Response:
        segments = [
            {"id": sid, "name": s["name"], "type": s["type"], "description": s["description"]}
            for sid, s in self.segments.items()
        ]
        return Response(200, {"segments": segments})

    @route("POST", "/v1/segments")
    def create_segment(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return Response(400, {"errors": [{"detail": "invalid JSON", "status": "400"}]})
        segment = body.get("segment") if isinstance(body, dict) else None
        if not isinstance(segment, dict) or not segment.get("name"):
            return Response(400, {"errors": [{"detail": "segment.name is required", "status": "400"}]})
        segment_id = next(self._segment_ids)
        self.segments[segment_id] = {
            "name": segment["name"],
            "type": "manual",
            "description": segment.get("description", ""),
            "members": set(),
        }
        return Response(200, {"segment": {"id": segment_id, "name": segment["name"], "type": "manual"}})
