"""Klaviyo emulator: profiles, lists, asynchronous bulk import jobs and their import errors.

Bodies are validated with jsonschema against the request schemas of revision 2026-07-15 kept in
fixtures/klaviyo; the ``revision`` header is required; jobs hold at most 10,000 profiles and list
calls at most 1,000 ids; throttling is 429 with ``Retry-After`` in whole seconds. A job reports
``processing`` on its first status read and ``complete`` after, so clients must poll.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import uuid
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

from jsonschema import Draft202012Validator

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

FIXTURES = Path(__file__).parent / "fixtures" / "klaviyo"
MAX_IMPORT = 10_000
MAX_LIST_IDS = 1_000
ERRORS_PAGE = 100
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` as JSON Schema: the type also admits null."""
    if isinstance(node, dict):
        out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        elif node.get("nullable") and "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
        return out
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


_SPEC = _nullable(json.loads((FIXTURES / "requests.json").read_text()))
VALIDATORS = {
    op: Draft202012Validator({**schema, "components": _SPEC["components"]})
    for op, schema in _SPEC["requests"].items()
}
REVISION = _SPEC["revision"]


def api_errors(status: int, code: str, title: str, detail: str, pointer: str | None = None) -> Response:
    error: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
    }
    if pointer:
        error["source"] = {"pointer": pointer}
    return Response(status, {"errors": [error]})


class KlaviyoEmulator(Emulator):
    name = "klaviyo"
    default_credentials: ClassVar[dict[str, str]] = {"api_key": "pk_test"}

    def __init__(self, faults: FaultConfig | None = None, *, api_key: str = "pk_test", **kwargs: Any) -> None:
        super().__init__(faults, **kwargs)
        self.api_key = api_key
        self.profiles: dict[str, dict[str, Any]] = {}  # id -> attributes
        self.lists: dict[str, dict[str, Any]] = {}  # id -> {"name", "members": set of profile ids}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    # -- inspection ------------------------------------------------------------------------------

    def list_member_emails(self, list_id: str) -> set[str]:
        with self.lock:
            return {self.profiles[p].get("email") for p in self.lists[list_id]["members"]}

    def emails(self) -> set[str]:
        with self.lock:
            return {p["email"] for p in self.profiles.values() if p.get("email")}

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Klaviyo-API-Key {self.api_key}":
            return self.authenticate_failure()
        if not request.headers.get("revision"):
            return api_errors(400, "invalid", "Invalid input.", "A revision header is required", None)
        return None

    def authenticate_failure(self) -> Response:
        return api_errors(
            401,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "Missing or invalid private key.",
        )

    def throttle_response(self) -> Response:
        seconds = max(1, math.ceil(self.faults.retry_after))
        response = api_errors(
            429,
            "throttled",
            "Request was throttled.",
            f"Request was throttled. Expected available in {seconds} seconds.",
        )
        response.headers["Retry-After"] = str(seconds)
        return response

    def server_error_response(self) -> Response:
        return api_errors(503, "error", "Service unavailable.", "Please retry.")

    def _body(self, request: Request, operation: str) -> tuple[Any, Response | None]:
        try:
            body = request.json()
        except ValueError as exc:
            return None, api_errors(400, "invalid", "Invalid input.", f"Malformed JSON: {exc}")
        problems = sorted(VALIDATORS[operation].iter_errors(body), key=lambda e: list(e.absolute_path))
        if problems:
            p = problems[0]
            pointer = "/" + "/".join(str(x) for x in p.absolute_path)
            return None, api_errors(400, "invalid", "Invalid input.", p.message, pointer)
        return body, None

    def _page_url(self, request: Request, cursor: int) -> str:
        query = {k: v[0] for k, v in request.query.items()}
        query["page[cursor]"] = str(cursor)
        return f"{self.base_url}{request.path}?{urlencode(query)}"

    # -- lists -----------------------------------------------------------------------------------

    @route("GET", "/api/lists")
    def get_lists(self, request: Request) -> Response:
        flt = (request.query.get("filter") or [""])[0]
        match = re.fullmatch(r'equals\(name,(".*")\)', flt)
        name = json.loads(match.group(1)) if match else None
        data = [
            {"type": "list", "id": lid, "attributes": {"name": lst["name"]}}
            for lid, lst in self.lists.items()
            if name is None or lst["name"] == name
        ]
        return Response(
            200, {"data": data, "links": {"self": f"{self.base_url}{request.path}", "next": None}}
        )

    @route("POST", "/api/lists")
    def create_list(self, request: Request) -> Response:
        body, error = self._body(request, "POST /api/lists")
        if error:
            return error
        list_id = f"L{next(self._ids):05d}"
        self.lists[list_id] = {"name": body["data"]["attributes"]["name"], "members": set()}
        return Response(
            201,
            {"data": {"type": "list", "id": list_id, "attributes": {"name": self.lists[list_id]["name"]}}},
        )

    @route("POST", "/api/lists/{list_id}/relationships/profiles")
    def add_to_list(self, request: Request) -> Response:
        return self._list_members(request, "POST /api/lists/{id}/relationships/profiles", add=True)

    @route("DELETE", "/api/lists/{list_id}/relationships/profiles")
    def remove_from_list(self, request: Request) -> Response:
        return self._list_members(request, "DELETE /api/lists/{id}/relationships/profiles", add=False)

    def _list_members(self, request: Request, operation: str, *, add: bool) -> Response:
        lst = self.lists.get(request.params["list_id"])
        if lst is None:
            return api_errors(
                404, "not_found", "Not found.", f"List {request.params['list_id']} does not exist."
            )
        body, error = self._body(request, operation)
        if error:
            return error
        if len(body["data"]) > MAX_LIST_IDS:
            return api_errors(
                400, "invalid", "Invalid input.", f"At most {MAX_LIST_IDS} profiles per request", "/data"
            )
        for item in body["data"]:
            if item["id"] not in self.profiles:
                return api_errors(
                    400, "invalid", "Invalid input.", f"Profile {item['id']} does not exist", "/data"
                )
        for item in body["data"]:
            (lst["members"].add if add else lst["members"].discard)(item["id"])
        return Response(204, None)

    # -- profiles --------------------------------------------------------------------------------

    @route("GET", "/api/profiles")
    def get_profiles(self, request: Request) -> Response:
        flt = (request.query.get("filter") or [""])[0]
        match = re.fullmatch(r"any\(email,(\[.*\])\)", flt)
        if not match:
            return api_errors(400, "invalid", "Invalid input.", f"Unsupported filter {flt!r}", None)
        wanted = set(json.loads(match.group(1)))
        size = int((request.query.get("page[size]") or ["20"])[0])
        if size > 100:
            return api_errors(400, "invalid", "Invalid input.", "page[size] must be at most 100", None)
        found = [
            {"type": "profile", "id": pid, "attributes": dict(p)}
            for pid, p in self.profiles.items()
            if p.get("email") in wanted
        ]
        cursor = int((request.query.get("page[cursor]") or ["0"])[0])
        page = found[cursor : cursor + size]
        following = self._page_url(request, cursor + size) if cursor + size < len(found) else None
        return Response(
            200, {"data": page, "links": {"self": f"{self.base_url}{request.path}", "next": following}}
        )

    @route("POST", "/api/profile-bulk-import-jobs")
    def bulk_import(self, request: Request) -> Response:
        if len(request.body) > 5_000_000:
            return api_errors(413, "too_large", "Payload too large.", "The payload may be at most 5 MB.")
        body, error = self._body(request, "POST /api/profile-bulk-import-jobs")
        if error:
            return error
        data = body["data"]
        profiles = data["attributes"]["profiles"]["data"]
        if len(profiles) > MAX_IMPORT:
            return api_errors(
                400,
                "invalid",
                "Invalid input.",
                f"At most {MAX_IMPORT} profiles per job",
                "/data/attributes/profiles/data",
            )
        list_ids = [
            item["id"] for item in ((data.get("relationships") or {}).get("lists") or {}).get("data") or []
        ]
        missing = [lid for lid in list_ids if lid not in self.lists]
        if missing:
            return api_errors(
                400,
                "invalid",
                "Invalid input.",
                f"List {missing[0]} does not exist",
                "/data/relationships/lists",
            )
        job_id = str(uuid.uuid4())
        errors: list[dict[str, Any]] = []
        for n, profile in enumerate(profiles):
            problem = self._profile_problem(profile["attributes"])
            if problem:
                errors.append(
                    {
                        "type": "import-error",
                        "id": str(uuid.uuid4()),
                        "attributes": {
                            "code": "invalid",
                            "title": "Invalid input",
                            "detail": problem,
                            "source": {"pointer": f"/data/attributes/profiles/data/{n}"},
                            "original_payload": profile,
                        },
                    }
                )
                continue
            profile_id = self._upsert(profile["attributes"])
            for lid in list_ids:
                self.lists[lid]["members"].add(profile_id)
        self.jobs[job_id] = {"status": "queued", "total": len(profiles), "errors": errors, "reads": 0}
        return Response(
            202,
            {
                "data": self._job(job_id),
                "links": {"self": f"{self.base_url}/api/profile-bulk-import-jobs/{job_id}"},
            },
        )

    def _profile_problem(self, attributes: dict[str, Any]) -> str | None:
        if not any(attributes.get(k) for k in ("email", "phone_number", "external_id", "_kx")):
            return "A profile needs an email, phone_number, external_id or _kx"
        email = attributes.get("email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            return f"Invalid email address {email!r}"
        phone = attributes.get("phone_number")
        if phone is not None and not _E164.match(phone):
            return f"Invalid phone number {phone!r}: expected E.164"
        for value in attributes.values():
            if isinstance(value, str) and value in self.faults.reject_values:
                return f"Value {value!r} rejected"
        return None

    def _upsert(self, attributes: dict[str, Any]) -> str:
        for key in ("email", "phone_number", "external_id"):
            value = attributes.get(key)
            if value is None:
                continue
            for pid, existing in self.profiles.items():
                if existing.get(key) == value:
                    self._merge(existing, attributes)
                    return pid
        pid = f"01P{next(self._ids):023d}"
        self.profiles[pid] = {}
        self._merge(self.profiles[pid], attributes)
        return pid

    @staticmethod
    def _merge(existing: dict[str, Any], attributes: dict[str, Any]) -> None:
        for key, value in attributes.items():
            if key == "properties" and isinstance(value, dict):
                existing.setdefault("properties", {}).update(value)
            elif value is None:
                existing.pop(key, None)
            else:
                existing[key] = value

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        done = job["status"] == "complete"
        failed = len(job["errors"])
        return {
            "type": "profile-bulk-import-job",
            "id": job_id,
            "attributes": {
                "status": job["status"],
                "total_count": job["total"],
                "completed_count": job["total"] - failed if done else 0,
                "failed_count": failed if done else 0,
            },
        }

    @route("GET", "/api/profile-bulk-import-jobs/{job_id}")
    def get_job(self, request: Request) -> Response:
        job = self.jobs.get(request.params["job_id"])
        if job is None:
            return api_errors(404, "not_found", "Not found.", "No such job.")
        job["reads"] += 1
        job["status"] = "processing" if job["reads"] == 1 else "complete"
        return Response(200, {"data": self._job(request.params["job_id"])})

    @route("GET", "/api/profile-bulk-import-jobs/{job_id}/import-errors")
    def get_import_errors(self, request: Request) -> Response:
        job = self.jobs.get(request.params["job_id"])
        if job is None:
            return api_errors(404, "not_found", "Not found.", "No such job.")
        cursor = int((request.query.get("page[cursor]") or ["0"])[0])
        page = job["errors"][cursor : cursor + ERRORS_PAGE]
        following = (
            self._page_url(request, cursor + ERRORS_PAGE)
            if cursor + ERRORS_PAGE < len(job["errors"])
            else None
        )
        return Response(
            200, {"data": page, "links": {"self": f"{self.base_url}{request.path}", "next": following}}
        )
