"""TikTok Business API v1.3 emulator: audience list, streaming audience create, and segment/mapping.

Behaviour follows TikTok's envelope: every answer is ``{"code", "message", "request_id", "data"}`` and
the code outranks the HTTP status, so throttling (40100), bad tokens (40105) and server trouble (50000)
all arrive as HTTP 200. The list query parameters and the audience-name length come from the published
operation specs (fixtures/tiktok); mapping rows must align with ``id_schema`` and carry SHA-256 (or MD5
for ad ids) lowercase hex. A row TikTok cannot accept fails the whole request with 40001.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from pathlib import Path
from typing import Any, ClassVar

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

FIXTURES = Path(__file__).parent / "fixtures" / "tiktok"
SPEC = json.loads((FIXTURES / "audience_api.json").read_text())
LIST_PARAMS = {p["name"]: p for p in SPEC["list_parameters"] if p["name"] != "Access-Token"}  # a header
NAME_MAX = int(SPEC["custom_audience_name_max_length"])
ID_TYPES = frozenset(SPEC["streaming_id_schema"])
HEX = {"SHA256": re.compile(r"^[0-9a-f]{64}$"), "MD5": re.compile(r"^[0-9a-f]{32}$")}


def envelope(code: int, message: str, data: Any = None) -> Response:
    return Response(
        200, {"code": code, "message": message, "request_id": uuid.uuid4().hex, "data": data or {}}
    )


class TikTokEmulator(Emulator):
    name = "tiktok"
    default_credentials: ClassVar[dict[str, str]] = {"access_token": "tt-test-token"}

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        access_token: str = "tt-test-token",
        advertiser_id: str = "7012345678901234567",
        **kwargs: Any,
    ) -> None:
        super().__init__(faults, **kwargs)
        self.access_token = access_token
        self.advertisers = {advertiser_id}
        self.audiences: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(6900000000000000001)

    # -- inspection ------------------------------------------------------------------------------

    def members(self, audience_id: str, id_type: str = "EMAIL_SHA256") -> set[str]:
        with self.lock:
            return set(self.audiences[audience_id]["members"].get(id_type, set()))

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        token = request.headers.get("access-token")
        if not token:
            return envelope(40104, "Access token is empty.")
        if token != self.access_token:
            return self.authenticate_failure()
        return None

    def authenticate_failure(self) -> Response:
        return envelope(40105, "The access token is invalid or has been revoked.")

    def throttle_response(self) -> Response:
        return envelope(40100, "Requests made too frequently. Please retry after a while.")

    def server_error_response(self) -> Response:
        return envelope(50000, "System error. Please retry.")

    # -- routes ----------------------------------------------------------------------------------

    @route("GET", "/dmp/custom_audience/list/")
    def list_audiences(self, request: Request) -> Response:
        query = {k: v[0] for k, v in request.query.items()}
        for name, spec in LIST_PARAMS.items():
            if spec["required"] and name not in query:
                return envelope(40002, f"{name}: Missing data for required field.")
        unknown = sorted(set(query) - set(LIST_PARAMS))
        if unknown:
            return envelope(40001, f"{unknown[0]}: Unknown field.")
        numbers: dict[str, int] = {}
        for name in ("page", "page_size"):
            schema = LIST_PARAMS[name]["schema"]
            try:
                value = int(query.get(name, schema["default"]))
            except ValueError:
                return envelope(40001, f"{name}: Not a valid integer.")
            if value < schema.get("minimum", value) or value > schema.get("maximum", value):
                return envelope(
                    40001, f"{name}: out of range [{schema.get('minimum')}, {schema.get('maximum')}]."
                )
            numbers[name] = value
        if query["advertiser_id"] not in self.advertisers:
            return envelope(40001, "advertiser_id: No permission to operate advertiser.")
        owned = [
            {"audience_id": aid, "name": a["name"], "audience_type": "Partner Audience", "is_creator": True}
            for aid, a in self.audiences.items()
            if a["advertiser_id"] == query["advertiser_id"]
        ]
        size, page = numbers["page_size"], numbers["page"]
        total_page = max(1, -(-len(owned) // size))
        data = {
            "list": owned[(page - 1) * size : page * size],
            "page_info": {
                "page": page,
                "page_size": size,
                "total_number": len(owned),
                "total_page": total_page,
            },
        }
        return envelope(0, "OK", data)

    @route("POST", "/segment/audience/")
    def create_audience(self, request: Request) -> Response:
        body = self._body(request)
        if body is None:
            return envelope(40001, "Request body must be a JSON object.")
        name = body.get("custom_audience_name")
        if body.get("action") != "create":
            return envelope(40001, "action: must be create.")
        if not isinstance(name, str) or not name or len(name) > NAME_MAX:
            return envelope(40001, f"custom_audience_name: length must be between 1 and {NAME_MAX}.")
        if str(body.get("advertiser_id")) not in self.advertisers:
            return envelope(40001, "advertiser_id: No permission to operate advertiser.")
        audience_id = str(next(self._ids))
        self.audiences[audience_id] = {
            "name": name,
            "advertiser_id": str(body["advertiser_id"]),
            "members": {},
        }
        return envelope(0, "OK", {"audience_id": audience_id})

    @route("POST", "/segment/mapping/")
    def mapping(self, request: Request) -> Response:
        body = self._body(request)
        if body is None:
            return envelope(40001, "Request body must be a JSON object.")
        for field in ("advertiser_ids", "action", "id_schema", "batch_data"):
            if field not in body:
                return envelope(40002, f"{field}: Missing data for required field.")
        advertisers = body["advertiser_ids"]
        if (
            not isinstance(advertisers, list)
            or not advertisers
            or set(map(str, advertisers)) - self.advertisers
        ):
            return envelope(40001, "advertiser_ids: No permission to operate advertiser.")
        if body["action"] not in ("add", "delete"):
            return envelope(40001, "action: must be one of add, delete.")
        schema = body["id_schema"]
        if (
            not isinstance(schema, list)
            or not schema
            or set(schema) - ID_TYPES
            or len(set(schema)) != len(schema)
        ):
            return envelope(40001, f"id_schema: each must be one of {sorted(ID_TYPES)}, without repeats.")
        rows = body["batch_data"]
        if not isinstance(rows, list):
            return envelope(40001, "batch_data: must be an array.")
        changes: list[tuple[str, str, str]] = []
        for n, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(schema):
                return envelope(40001, f"batch_data[{n}]: must have one entry per id_schema item.")
            if not any(cell for cell in row):
                return envelope(40001, f"batch_data[{n}]: a user needs at least one id.")
            for id_type, cell in zip(schema, row, strict=True):
                if not cell:
                    continue
                value, audiences = cell.get("id"), cell.get("audience_ids")
                if not isinstance(value, str) or not HEX[id_type.rsplit("_", 1)[1]].match(value):
                    return envelope(40001, f"batch_data[{n}]: {id_type} id is not a lowercase hex digest.")
                if value in self.faults.reject_values:
                    return envelope(40001, f"batch_data[{n}]: id {value[:12]}... is invalid.")
                if not isinstance(audiences, list) or not audiences:
                    return envelope(40002, f"batch_data[{n}]: audience_ids: Missing data for required field.")
                for audience_id in map(str, audiences):
                    if audience_id not in self.audiences:
                        return envelope(40001, f"audience_ids: audience {audience_id} does not exist.")
                    changes.append((audience_id, id_type, value))
        for audience_id, id_type, value in changes:
            ids = self.audiences[audience_id]["members"].setdefault(id_type, set())
            if body["action"] == "add":
                ids.add(value)
            else:
                ids.discard(value)
        return envelope(0, "OK")

    @staticmethod
    def _body(request: Request) -> dict[str, Any] | None:
        try:
            body = request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
