"""Salesforce REST emulator: describe, sObject Collections upsert/update, a SOQL ``IN`` lookup, Tooling
API custom fields, and the limits resource.

Behaviour follows Salesforce's: Bearer session ids (401 ``INVALID_SESSION_ID``); errors are JSON
arrays ``[{"message", "errorCode", "fields"}]``; at most 200 records per collection and one sObject type
(``attributes.type``) per request; an unknown field refuses the whole request (400 ``INVALID_FIELD``);
per-record failures (required field missing, validation rule) come back in request order in a 200;
``allOrNone`` rolls everything back; field names are case-insensitive; the API allocation is exhausted
with **403** ``REQUEST_LIMIT_EXCEEDED``; every response carries ``Sforce-Limit-Info``.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, ClassVar

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

MAX_RECORDS = 200
MIN_COLLECTIONS_VERSION = 42.0
DAILY_ALLOCATION = 15000
QUERY_RE = re.compile(
    r"^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)\s+WHERE\s+(\w+)\s+IN\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL
)
LITERAL_RE = re.compile(r"'((?:[^'\\]|\\.)*)'")


def sf_error(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    return Response(status, [{"message": message, "errorCode": code, "fields": fields or []}])


def _field(
    name: str, *, kind: str = "string", required: bool = False, external: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "nillable": not required,
        "createable": name != "Id",
        "updateable": name != "Id",
        "externalId": external,
        "idLookup": external or name == "Id",
        "custom": name.endswith("__c"),
    }


class SalesforceEmulator(Emulator):
    name = "salesforce"
    default_credentials: ClassVar[dict[str, str]] = {"access_token": "00Dxx0000000001!AQ4AQ.test"}

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        access_token: str = "00Dxx0000000001!AQ4AQ.test",
        **kwargs: Any,
    ) -> None:
        super().__init__(faults, **kwargs)
        self.access_token = access_token
        self.schema: dict[str, dict[str, dict[str, Any]]] = {
            "Contact": {
                f["name"].lower(): f
                for f in (
                    _field("Id", kind="id"),
                    _field("FirstName"),
                    _field("LastName", required=True),
                    _field("Email", kind="email"),
                    _field("Phone", kind="phone"),
                    _field("Email_Key__c", external=True),
                )
            }
        }
        self.records: dict[str, dict[str, dict[str, Any]]] = {"Contact": {}}
        self._ids = itertools.count(1)
        self.api_usage = 0

    # -- inspection ------------------------------------------------------------------------------

    def with_field(self, obj: str, field: str, value: Any = True) -> set[str]:
        """External ids (Email_Key__c) of the records whose ``field`` equals ``value``."""
        with self.lock:
            return {
                r.get("Email_Key__c")
                for r in self.records[obj].values()
                if r.get(self._canonical(obj, field) or field) == value
            }

    def record(self, obj: str, field: str, value: str) -> dict[str, Any] | None:
        with self.lock:
            name = self._canonical(obj, field) or field
            return next(
                (dict(r) for r in self.records[obj].values() if str(r.get(name)).lower() == value.lower()),
                None,
            )

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return self.authenticate_failure()
        return None

    def authenticate_failure(self) -> Response:
        return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def throttle_response(self) -> Response:
        return sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def server_error_response(self) -> Response:
        return sf_error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable; try again later.")

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        with self.lock:
            self.api_usage += 1
            response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_usage}/{DAILY_ALLOCATION}"
        return response

    # -- helpers ---------------------------------------------------------------------------------

    def _canonical(self, obj: str, field: str) -> str | None:
        found = self.schema.get(obj, {}).get(field.lower())
        return found["name"] if found else None

    def _version(self, request: Request, minimum: float = 31.0) -> Response | None:
        match = re.fullmatch(r"v(\d+\.\d)", request.params.get("version", ""))
        if not match or not minimum <= float(match.group(1)) <= 66.0:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        return None

    def _object(self, name: str) -> str | None:
        return next((o for o in self.schema if o.lower() == name.lower()), None)

    @staticmethod
    def _json(request: Request) -> tuple[Any, Response | None]:
        try:
            return request.json(), None
        except ValueError as exc:
            return None, sf_error(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}")

    def _collection(self, request: Request, obj: str) -> tuple[list[dict[str, Any]], bool, Response | None]:
        body, error = self._json(request)
        if error:
            return [], False, error
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            return [], False, sf_error(400, "JSON_PARSER_ERROR", "Expected an object with a records array")
        if not isinstance(body.get("allOrNone", False), bool):
            return [], False, sf_error(400, "JSON_PARSER_ERROR", "allOrNone must be a boolean")
        records = body["records"]
        if len(records) > MAX_RECORDS:
            return (
                [],
                False,
                sf_error(
                    400,
                    "EXCEEDED_ID_LIMIT",
                    f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
                ),
            )
        for row in records:
            kind = (row.get("attributes") or {}).get("type") if isinstance(row, dict) else None
            if kind is None:
                return [], False, sf_error(400, "INVALID_TYPE", "Must send a concrete entity type.")
            if kind.lower() != obj.lower():
                return (
                    [],
                    False,
                    sf_error(400, "INVALID_TYPE", "All records in a collection must be of one sObject type"),
                )
            unknown = [k for k in row if k != "attributes" and k.lower() not in self.schema[obj]]
            if unknown:
                return (
                    [],
                    False,
                    sf_error(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{unknown[0]}' on sobject of type {obj}",
                        [unknown[0]],
                    ),
                )
        return records, bool(body.get("allOrNone")), None

    def _row_problem(self, obj: str, values: dict[str, Any], creating: bool) -> dict[str, Any] | None:
        rejected = [k for k, v in values.items() if isinstance(v, str) and v in self.faults.reject_values]
        if rejected:
            return {
                "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "message": f"Value of {rejected[0]} is not allowed",
                "fields": rejected[:1],
            }
        required = [f["name"] for f in self.schema[obj].values() if not f["nillable"] and f["createable"]]
        missing = (
            [f for f in required if values.get(f) in (None, "")]
            if creating
            else [f for f in required if f in values and values[f] in (None, "")]
        )
        if missing:
            return {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": f"Required fields are missing: [{', '.join(missing)}]",
                "fields": missing,
            }
        return None

    def _finish(
        self,
        results: list[dict[str, Any]],
        writes: list[tuple[str, dict[str, Any]]],
        obj: str,
        all_or_none: bool,
    ) -> Response:
        if all_or_none and any(not r["success"] for r in results):
            rolled = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": [],
            }
            return Response(
                200,
                [
                    r if not r["success"] else {"id": None, "success": False, "errors": [rolled]}
                    for r in results
                ],
            )
        for record_id, values in writes:
            self.records[obj].setdefault(record_id, {"Id": record_id}).update(values)
        return Response(200, results)

    # -- routes ----------------------------------------------------------------------------------

    @route("GET", "/services/data/{version}/limits")
    def limits(self, request: Request) -> Response:
        return self._version(request) or Response(
            200,
            {"DailyApiRequests": {"Max": DAILY_ALLOCATION, "Remaining": DAILY_ALLOCATION - self.api_usage}},
        )

    @route("GET", "/services/data/{version}/sobjects/{object}/describe")
    def describe(self, request: Request) -> Response:
        if error := self._version(request):
            return error
        obj = self._object(request.params["object"])
        if obj is None:
            return sf_error(
                404, "NOT_FOUND", f"The requested resource does not exist: {request.params['object']}"
            )
        return Response(
            200,
            {"name": obj, "createable": True, "updateable": True, "fields": list(self.schema[obj].values())},
        )

    @route("PATCH", "/services/data/{version}/composite/sobjects/{object}/{field}")
    def upsert(self, request: Request) -> Response:
        if error := self._version(request, MIN_COLLECTIONS_VERSION):
            return error
        obj = self._object(request.params["object"])
        if obj is None:
            return sf_error(404, "NOT_FOUND", f"sObject type '{request.params['object']}' is not supported.")
        spec = self.schema[obj].get(request.params["field"].lower())
        if spec is None or not spec["idLookup"] or spec["name"] == "Id":
            return sf_error(
                400, "INVALID_FIELD", f"Field {request.params['field']} is not an external id field on {obj}"
            )
        ext = spec["name"]
        records, all_or_none, error = self._collection(request, obj)
        if error:
            return error
        index = {str(r.get(ext)).lower(): rid for rid, r in self.records[obj].items() if r.get(ext)}
        results: list[dict[str, Any]] = []
        writes: list[tuple[str, dict[str, Any]]] = []
        for row in records:
            values = {self._canonical(obj, k): v for k, v in row.items() if k != "attributes"}
            if "Id" in values:
                results.append(
                    {
                        "id": None,
                        "success": False,
                        "created": False,
                        "errors": [
                            {
                                "statusCode": "INVALID_FIELD",
                                "message": "Id is not allowed when upserting by external id",
                                "fields": ["Id"],
                            }
                        ],
                    }
                )
                continue
            key = str(values.get(ext) or "").lower()
            if not key:
                results.append(
                    {
                        "id": None,
                        "success": False,
                        "created": False,
                        "errors": [
                            {
                                "statusCode": "MISSING_ARGUMENT",
                                "message": f"{ext} not specified",
                                "fields": [ext],
                            }
                        ],
                    }
                )
                continue
            record_id = index.get(key)
            creating = record_id is None
            problem = self._row_problem(obj, values, creating)
            if problem:
                results.append({"id": None, "success": False, "created": False, "errors": [problem]})
                continue
            if record_id is None:
                record_id = f"003{next(self._ids):012d}AAA"
                index[key] = record_id
            writes.append((record_id, values))
            results.append({"id": record_id, "success": True, "errors": [], "created": creating})
        return self._finish(results, writes, obj, all_or_none)

    @route("PATCH", "/services/data/{version}/composite/sobjects")
    def update(self, request: Request) -> Response:
        if error := self._version(request, MIN_COLLECTIONS_VERSION):
            return error
        body, error = self._json(request)
        if error:
            return error
        rows = body.get("records") if isinstance(body, dict) else None
        kind = ((rows or [{}])[0].get("attributes") or {}).get("type", "") if rows else ""
        obj = self._object(kind)
        if obj is None:
            return sf_error(400, "INVALID_TYPE", "Must send a concrete entity type.")
        records, all_or_none, error = self._collection(request, obj)
        if error:
            return error
        results: list[dict[str, Any]] = []
        writes: list[tuple[str, dict[str, Any]]] = []
        for row in records:
            values = {self._canonical(obj, k): v for k, v in row.items() if k != "attributes"}
            record_id = str(values.pop("Id", "") or "")
            if record_id not in self.records[obj]:
                results.append(
                    {
                        "id": record_id or None,
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "INVALID_CROSS_REFERENCE_KEY",
                                "message": "invalid cross reference id",
                                "fields": [],
                            }
                        ],
                    }
                )
                continue
            problem = self._row_problem(obj, values, creating=False)
            if problem:
                results.append({"id": record_id, "success": False, "errors": [problem]})
                continue
            writes.append((record_id, values))
            results.append({"id": record_id, "success": True, "errors": []})
        return self._finish(results, writes, obj, all_or_none)

    @route("GET", "/services/data/{version}/query")
    def query(self, request: Request) -> Response:
        if error := self._version(request):
            return error
        soql = (request.query.get("q") or [""])[0]
        match = QUERY_RE.match(soql)
        if not match:
            return sf_error(
                400,
                "MALFORMED_QUERY",
                "the emulator understands SELECT f1, f2 FROM Object WHERE field IN ('a', 'b')",
            )
        fields_text, obj_name, where_field, values_text = match.groups()
        obj = self._object(obj_name)
        if obj is None:
            return sf_error(400, "INVALID_TYPE", f"sObject type '{obj_name}' is not supported.")
        selected = [f.strip() for f in fields_text.split(",")]
        unknown = [f for f in [*selected, where_field] if f.lower() not in self.schema[obj]]
        if unknown:
            return sf_error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{obj}'.")
        literals = LITERAL_RE.findall(values_text)
        if LITERAL_RE.sub("", values_text).replace(",", "").strip():
            return sf_error(400, "MALFORMED_QUERY", "unexpected token in the IN list")
        wanted = {re.sub(r"\\(.)", r"\1", v).lower() for v in literals}
        where = self._canonical(obj, where_field)
        rows = [
            {
                "attributes": {
                    "type": obj,
                    "url": f"/services/data/{request.params['version']}/sobjects/{obj}/{rid}",
                },
                **{self._canonical(obj, f): r.get(self._canonical(obj, f)) for f in selected},
            }
            for rid, r in self.records[obj].items()
            if str(r.get(where) or "").lower() in wanted
        ]
        return Response(200, {"totalSize": len(rows), "done": True, "records": rows})

    @route("POST", "/services/data/{version}/tooling/sobjects/CustomField")
    def create_field(self, request: Request) -> Response:
        if error := self._version(request):
            return error
        body, error = self._json(request)
        if error:
            return error
        full = str((body or {}).get("FullName") or "")
        metadata = (body or {}).get("Metadata") or {}
        obj_name, _, field = full.partition(".")
        obj = self._object(obj_name)
        if obj is None or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,39}__c", field) or "__" in field[:-3]:
            return sf_error(400, "INVALID_FIELD", f"FullName {full!r} must be Object.Field__c")
        if not metadata.get("label") or metadata.get("type") not in ("Checkbox", "Text", "Number", "Date"):
            return sf_error(400, "FIELD_INTEGRITY_EXCEPTION", "Metadata needs a label and a supported type")
        if field.lower() in self.schema[obj]:
            return sf_error(
                400, "DUPLICATE_DEVELOPER_NAME", f"There is already a field named {field} on {obj}."
            )
        kind = "boolean" if metadata["type"] == "Checkbox" else metadata["type"].lower()
        self.schema[obj][field.lower()] = _field(field, kind=kind)
        if kind == "boolean":
            default = str(metadata.get("defaultValue", "false")).lower() == "true"
            for record in self.records[obj].values():
                record.setdefault(field, default)
        return Response(201, {"id": f"00N{next(self._ids):012d}AAA", "success": True, "errors": []})
