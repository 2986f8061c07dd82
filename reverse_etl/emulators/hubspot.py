"""HubSpot CRM v3 emulator: contacts with batch upsert/update/create/read/archive, and static lists.

Request bodies are validated with jsonschema against the OpenAPI request schemas kept in
fixtures/hubspot (extracted from HubSpot's public spec collection). Behaviour follows HubSpot's:
at most 100 inputs per batch, duplicate ids refuse the whole batch with 400, per-record problems
answer 207 with errors carrying ``objectWriteTraceId``, and throttling is 429 with ``policyName``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

from jsonschema import Draft202012Validator

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

FIXTURES = Path(__file__).parent / "fixtures" / "hubspot"
MAX_INPUTS = 100
_SPEC = json.loads((FIXTURES / "crm_requests.json").read_text())


def _validator(operation: str) -> Draft202012Validator:
    schema = {**_SPEC["requests"][operation], "components": _SPEC["components"]}
    return Draft202012Validator(schema)


VALIDATORS = {operation: _validator(operation) for operation in _SPEC["requests"]}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hubspot_error(status: int, category: str, message: str, **extra: Any) -> Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return Response(status, body)


class HubSpotEmulator(Emulator):
    name = "hubspot"
    default_credentials: ClassVar[dict[str, str]] = {"access_token": "pat-na1-test"}

    def __init__(
        self, faults: FaultConfig | None = None, *, access_token: str = "pat-na1-test", **kwargs: Any
    ) -> None:
        super().__init__(faults, **kwargs)
        self.access_token = access_token
        self.contacts: dict[str, dict[str, Any]] = {}  # id -> {"properties": {...}, "archived": bool}
        self.lists: dict[str, dict[str, Any]] = {}  # listId -> {"name", "members": set of ids}
        self._ids = itertools.count(51)
        self._list_ids = itertools.count(1)

    # -- inspection ------------------------------------------------------------------------------

    def contact_by_email(self, email: str) -> dict[str, str] | None:
        with self.lock:
            contact_id = self._email_index().get(email.lower())
            return dict(self.contacts[contact_id]["properties"]) if contact_id else None

    def emails(self) -> set[str]:
        with self.lock:
            return {c["properties"]["email"] for c in self.contacts.values() if not c["archived"]}

    def list_member_emails(self, list_id: str) -> set[str]:
        with self.lock:
            return {self.contacts[i]["properties"]["email"] for i in self.lists[list_id]["members"]}

    def _email_index(self) -> dict[str, str]:
        return {
            c["properties"].get("email", "").lower(): cid
            for cid, c in self.contacts.items()
            if not c["archived"]
        }

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return self.authenticate_failure()
        return None

    def authenticate_failure(self) -> Response:
        return hubspot_error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        )

    def throttle_response(self) -> Response:
        body = {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": "TEN_SECONDLY_ROLLING",
            "requestId": str(uuid.uuid4()),
        }
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.faults.retry_after * 1000)),
            "X-HubSpot-RateLimit-Max": "190",
            "X-HubSpot-RateLimit-Remaining": "0",
        }
        return Response(429, body, headers)

    def server_error_response(self) -> Response:
        return hubspot_error(502, "INTERNAL_ERROR", "Bad gateway")

    # -- helpers ---------------------------------------------------------------------------------

    def _body(self, request: Request, operation: str) -> tuple[Any, Response | None]:
        try:
            body = request.json()
        except ValueError as exc:
            return None, hubspot_error(400, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {exc}")
        problems = sorted(VALIDATORS[operation].iter_errors(body), key=lambda e: list(e.absolute_path))
        if problems:
            details = [
                {
                    "message": p.message,
                    "in": "/".join(str(x) for x in p.absolute_path) or "body",
                    "code": "INVALID_INPUT",
                }
                for p in problems[:10]
            ]
            return None, hubspot_error(
                400, "VALIDATION_ERROR", f"Invalid input JSON: {problems[0].message}", errors=details
            )
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if isinstance(inputs, list) and not 1 <= len(inputs) <= MAX_INPUTS:
            return None, hubspot_error(
                400,
                "VALIDATION_ERROR",
                f"Batch input must contain between 1 and {MAX_INPUTS} inputs; got {len(inputs)}",
            )
        return body, None

    @staticmethod
    def _duplicates(ids: list[str]) -> Response | None:
        seen: set[str] = set()
        dupes = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        if dupes:
            return hubspot_error(
                400,
                "VALIDATION_ERROR",
                f"Duplicate IDs found in batch input: [{', '.join(dupes)}]. IDs must be unique",
                context={"ids": dupes},
            )
        return None

    def _record_error(self, item: dict[str, Any], ident: str, category: str, message: str) -> dict[str, Any]:
        context = (
            {"objectWriteTraceId": [item["objectWriteTraceId"]]}
            if item.get("objectWriteTraceId")
            else {"ids": [ident]}
        )
        return {
            "status": "error",
            "category": category,
            "message": message,
            "context": context,
            "errors": [],
            "links": {},
        }

    def _problem(self, properties: dict[str, str]) -> str | None:
        email = properties.get("email")
        if email is not None and ("@" not in email or email != email.strip()):
            return f'Property values were not valid: [{{"isValid":false,"message":"Email address {email} is invalid","error":"INVALID_EMAIL","name":"email"}}]'
        rejected = [v for v in properties.values() if v in self.faults.reject_values]
        if rejected:
            return f"Property values were not valid: value {rejected[0]!r} rejected"
        return None

    def _result(self, contact_id: str, item: dict[str, Any], *, new: bool | None = None) -> dict[str, Any]:
        contact = self.contacts[contact_id]
        result = {
            "id": contact_id,
            "properties": dict(contact["properties"]),
            "createdAt": contact["createdAt"],
            "updatedAt": contact["updatedAt"],
            "archived": False,
        }
        if new is not None:
            result["new"] = new
        if item.get("objectWriteTraceId"):
            result["objectWriteTraceId"] = item["objectWriteTraceId"]
        return result

    def _write(self, contact_id: str | None, properties: dict[str, str]) -> str:
        now = _now()
        if contact_id is None:
            contact_id = str(next(self._ids))
            self.contacts[contact_id] = {"properties": {}, "archived": False, "createdAt": now}
        contact = self.contacts[contact_id]
        contact["properties"].update({k: v for k, v in properties.items()})
        contact["properties"]["hs_object_id"] = contact_id
        contact["updatedAt"] = now
        return contact_id

    @staticmethod
    def _batch_response(
        started: str, results: list[dict[str, Any]], errors: list[dict[str, Any]]
    ) -> Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "requestedAt": started,
            "startedAt": started,
            "completedAt": _now(),
            "links": {},
        }
        if errors:
            body.update(numErrors=len(errors), errors=errors)
            return Response(207, body)
        return Response(200, body)

    # -- contacts --------------------------------------------------------------------------------

    @route("GET", "/crm/v3/objects/contacts")
    def list_contacts(self, request: Request) -> Response:
        limit = int((request.query.get("limit") or ["10"])[0])
        results = [self._result(cid, {}) for cid, c in self.contacts.items() if not c["archived"]][:limit]
        return Response(200, {"results": results})

    @route("POST", "/crm/v3/objects/contacts/batch/upsert")
    def batch_upsert(self, request: Request) -> Response:
        started = _now()
        body, error = self._body(request, "POST /crm/v3/objects/contacts/batch/upsert")
        if error:
            return error
        ids = [
            str(i["id"]).lower() if i.get("idProperty") == "email" else str(i["id"]) for i in body["inputs"]
        ]
        duplicate = self._duplicates(ids)
        if duplicate:
            return duplicate
        index = self._email_index()
        results, errors = [], []
        for item, ident in zip(body["inputs"], ids, strict=True):
            id_property = item.get("idProperty") or "hs_object_id"
            if id_property not in ("email", "hs_object_id"):
                errors.append(
                    self._record_error(
                        item, ident, "VALIDATION_ERROR", f"{id_property} is not a unique property"
                    )
                )
                continue
            properties = dict(item["properties"])
            if id_property == "email":
                properties["email"] = properties.get("email", item["id"])
            problem = self._problem(properties)
            if problem:
                errors.append(self._record_error(item, ident, "VALIDATION_ERROR", problem))
                continue
            existing = (
                index.get(ident) if id_property == "email" else (ident if ident in self.contacts else None)
            )
            contact_id = self._write(existing, properties)
            index[properties.get("email", "").lower()] = contact_id
            results.append(self._result(contact_id, item, new=existing is None))
        return self._batch_response(started, results, errors)

    @route("POST", "/crm/v3/objects/contacts/batch/update")
    def batch_update(self, request: Request) -> Response:
        started = _now()
        body, error = self._body(request, "POST /crm/v3/objects/contacts/batch/update")
        if error:
            return error
        ids = [
            str(i["id"]).lower() if i.get("idProperty") == "email" else str(i["id"]) for i in body["inputs"]
        ]
        duplicate = self._duplicates(ids)
        if duplicate:
            return duplicate
        index = self._email_index()
        results, errors = [], []
        for item, ident in zip(body["inputs"], ids, strict=True):
            existing = (
                index.get(ident)
                if item.get("idProperty") == "email"
                else (ident if ident in self.contacts else None)
            )
            if existing is None:
                errors.append(
                    self._record_error(
                        item,
                        ident,
                        "OBJECT_NOT_FOUND",
                        f"Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid. ({ident})",
                    )
                )
                continue
            problem = self._problem(item["properties"])
            if problem:
                errors.append(self._record_error(item, ident, "VALIDATION_ERROR", problem))
                continue
            self._write(existing, item["properties"])
            results.append(self._result(existing, item))
        return self._batch_response(started, results, errors)

    @route("POST", "/crm/v3/objects/contacts/batch/create")
    def batch_create(self, request: Request) -> Response:
        started = _now()
        body, error = self._body(request, "POST /crm/v3/objects/contacts/batch/create")
        if error:
            return error
        index = self._email_index()
        emails = [str(i["properties"].get("email", "")).lower() for i in body["inputs"]]
        existing = [e for e in emails if e and e in index]
        if existing:  # HubSpot refuses the whole batch when one contact exists
            return hubspot_error(
                409, "CONFLICT", f"Contact already exists. Existing ID: {index[existing[0]]}"
            )
        results, errors = [], []
        for item, email in zip(body["inputs"], emails, strict=True):
            problem = self._problem(item["properties"])
            if problem:
                errors.append(self._record_error(item, email, "VALIDATION_ERROR", problem))
                continue
            contact_id = self._write(None, item["properties"])
            results.append(self._result(contact_id, item))
        return self._batch_response(started, results, errors)

    @route("POST", "/crm/v3/objects/contacts/batch/read")
    def batch_read(self, request: Request) -> Response:
        started = _now()
        body, error = self._body(request, "POST /crm/v3/objects/contacts/batch/read")
        if error:
            return error
        index = self._email_index()
        results, missing = [], []
        for item in body["inputs"]:
            ident = str(item["id"])
            found = (
                index.get(ident.lower())
                if body.get("idProperty") == "email"
                else (ident if ident in self.contacts else None)
            )
            if found is None:
                missing.append(ident)
            else:
                results.append(self._result(found, {}))
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
                    "context": {"ids": missing},
                    "errors": [],
                    "links": {},
                }
            )
        return self._batch_response(started, results, errors)

    @route("POST", "/crm/v3/objects/contacts/batch/archive")
    def batch_archive(self, request: Request) -> Response:
        body, error = self._body(request, "POST /crm/v3/objects/contacts/batch/archive")
        if error:
            return error
        for item in body["inputs"]:
            contact = self.contacts.get(str(item["id"]))
            if contact:
                contact["archived"] = True
                for members in self.lists.values():
                    members["members"].discard(str(item["id"]))
        return Response(204, None)

    # -- lists -----------------------------------------------------------------------------------

    @route("POST", "/crm/v3/lists")
    def create_list(self, request: Request) -> Response:
        body, error = self._body(request, "POST /crm/v3/lists")
        if error:
            return error
        if any(lst["name"] == body["name"] for lst in self.lists.values()):
            return hubspot_error(400, "VALIDATION_ERROR", f"A list named '{body['name']}' already exists.")
        list_id = str(next(self._list_ids))
        self.lists[list_id] = {
            "name": body["name"],
            "processingType": body["processingType"],
            "members": set(),
        }
        return Response(200, {"list": self._list(list_id)})

    def _list(self, list_id: str) -> dict[str, Any]:
        lst = self.lists[list_id]
        return {
            "listId": list_id,
            "name": lst["name"],
            "objectTypeId": "0-1",
            "processingType": lst["processingType"],
            "size": len(lst["members"]),
        }

    @route("GET", "/crm/v3/lists/object-type-id/{object_type}/name/{list_name}")
    def get_list_by_name(self, request: Request) -> Response:
        name = unquote(request.params["list_name"])
        for list_id, lst in self.lists.items():
            if lst["name"] == name:
                return Response(200, {"list": self._list(list_id)})
        return hubspot_error(404, "OBJECT_NOT_FOUND", f"List with name {name} not found.")

    @route("PUT", "/crm/v3/lists/{list_id}/memberships/add")
    def add_members(self, request: Request) -> Response:
        return self._membership(request, add=True)

    @route("PUT", "/crm/v3/lists/{list_id}/memberships/remove")
    def remove_members(self, request: Request) -> Response:
        return self._membership(request, add=False)

    def _membership(self, request: Request, *, add: bool) -> Response:
        lst = self.lists.get(request.params["list_id"])
        if lst is None:
            return hubspot_error(404, "OBJECT_NOT_FOUND", f"List {request.params['list_id']} does not exist.")
        operation = "add" if add else "remove"
        body, error = self._body(request, f"PUT /crm/v3/lists/{{listId}}/memberships/{operation}")
        if error:
            return error
        done, missing = [], []
        for record_id in body:
            if record_id not in self.contacts or self.contacts[record_id]["archived"]:
                missing.append(record_id)
            elif add and record_id not in lst["members"]:
                lst["members"].add(record_id)
                done.append(record_id)
            elif not add and record_id in lst["members"]:
                lst["members"].discard(record_id)
                done.append(record_id)
        return Response(
            200,
            {
                "recordsIdsAdded": done if add else [],
                "recordIdsRemoved": [] if add else done,
                "recordIdsMissing": missing,
            },
        )
