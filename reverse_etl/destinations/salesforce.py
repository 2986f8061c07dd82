"""Salesforce REST API: sObject Collections upsert by an external id field.

API: ``PATCH /services/data/vXX.X/composite/sobjects/{object}/{externalIdField}`` with
``{"allOrNone": false, "records": [{"attributes": {"type": object}, ...}]}`` answers 200 with one
UpsertResult per record **in request order** (``success``, ``errors[{statusCode, message, fields}]``).
Audience mode keeps a checkbox field (default ``CDP_<sync>__c``, created through the Tooling API by
``prepare()`` when missing) true for members: adds upsert it true; removals look the records up with SOQL
and set it false by id, so a removal never creates a record.
Batch limit: 200 records per collection request. Rate limit: an org-wide rolling 24-hour allocation
(and 25 concurrent long requests); over it Salesforce answers **HTTP 403** (not 429) with
``errorCode: REQUEST_LIMIT_EXCEEDED`` and no Retry-After; every response reports usage in
``Sforce-Limit-Info: api-usage=used/allowed``.

Errors come back as a JSON array ``[{"message", "errorCode", "fields"}]``. ``base_url`` is the org's
instance URL; ``access_token`` is a ready OAuth access token (refreshing it is left to whatever fills the
environment).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import requests

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
)

API_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
CUSTOM_FIELD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}__c$")
VERSION_RE = re.compile(r"^v\d{2,3}\.0$")


def field_value(value: Any) -> Any:
    """JSON for a field: dates as ISO strings; None clears the field."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def soql_string(value: str) -> str:
    """A SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def audience_field_for(sync_name: str) -> str:
    """``CDP_<sync>__c``: letters, digits and single underscores, at most 40 characters before ``__c``."""
    base = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]", "_", f"CDP_{sync_name}")).strip("_")[:40].rstrip("_")
    return f"{base}__c"


def is_custom_field_name(name: str) -> bool:
    """A custom field API name: a letter first, no double or trailing underscore before ``__c``."""
    base = name.removesuffix("__c")
    return bool(CUSTOM_FIELD_RE.match(name)) and "__" not in base and not base.endswith("_")


def sf_errors(response: requests.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


class SalesforceUpsert(Destination):
    name = "salesforce"
    title = "Salesforce sObject upsert"
    modes = ("upsert", "audience")
    limits = Limits(max_batch_size=200, requests_per_second=10.0, max_concurrency=4)
    identifier_fields = ()  # the external id field is a setting
    settings_spec = (
        SettingSpec("base_url", help="the org's instance URL, e.g. https://mydomain.my.salesforce.com"),
        SettingSpec("access_token", secret=True, help="env var holding an OAuth access token for the org"),
        SettingSpec(
            "object", required=False, default="Contact", help="sObject API name, e.g. Contact or Lead"
        ),
        SettingSpec(
            "external_id_field", help="API name of the external id field to upsert by, e.g. CDP_Id__c"
        ),
        SettingSpec(
            "audience_field", required=False, help="checkbox field for audience mode (default CDP_<sync>__c)"
        ),
        SettingSpec("api_version", required=False, default="v62.0", help="REST API version, e.g. v62.0"),
    )

    def __init__(self, settings: Mapping[str, Any], *, source: str = "<settings>") -> None:
        super().__init__(settings, source=source)
        for key in ("object", "external_id_field"):
            if not API_NAME_RE.match(str(self.settings[key])):
                raise ConfigError(f"{source}: {key} {self.settings[key]!r} is not a Salesforce API name")
        if not VERSION_RE.match(str(self.settings["api_version"])):
            raise ConfigError(
                f"{source}: api_version {self.settings['api_version']!r} should look like v62.0"
            )
        field = self.settings.get("audience_field")
        if field and not is_custom_field_name(str(field)):
            raise ConfigError(
                f"{source}: audience_field {field!r} must be a custom field API name like In_VIP__c"
            )

    # -- identifiers -----------------------------------------------------------------------------

    @property
    def _ext(self) -> str:
        return str(self.settings["external_id_field"])

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        value = fields.get(self._ext)
        value = str(value).strip() if value is not None else ""
        if not value:
            return None, f"no {self._ext} (the external id field)"
        bad = [k for k in fields if not API_NAME_RE.match(k) or k.lower() in ("id", "attributes")]
        if bad:
            return None, f"field {bad[0]!r} is not a writable field API name"
        out = {k: field_value(v) for k, v in fields.items()}
        out[self._ext] = value
        return out, None

    # -- requests --------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{str(self.settings['base_url']).rstrip('/')}/services/data/{self.settings['api_version']}/{path}"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.settings['access_token']}",
            "Content-Type": "application/json",
        }

    def audience_field(self, context: SyncContext) -> str:
        return str(
            context.state.get("audience_field")
            or self.settings.get("audience_field")
            or audience_field_for(context.sync_name)
        )

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        """The upsert for upsert/add; for remove, the SOQL lookup of the records' ids."""
        self._check_batch_size(records, "Salesforce's {limit} records per collection")
        kept, _ = self._normalised(records)
        obj = str(self.settings["object"])
        if operation in ("upsert", "add"):
            rows = []
            for _, fields in kept:
                row = {"attributes": {"type": obj}, **fields}
                if operation == "add":
                    row[self.audience_field(context)] = True
                rows.append(row)
            url = self._url(f"composite/sobjects/{obj}/{self._ext}")
            return "PATCH", url, self._headers(), {"allOrNone": False, "records": rows}
        if operation == "remove":
            values = ", ".join(soql_string(fields[self._ext]) for _, fields in kept)
            soql = f"SELECT Id, {self._ext} FROM {obj} WHERE {self._ext} IN ({values})"
            return "GET", self._url(f"query?{urlencode({'q': soql})}"), self._headers(), None
        raise ValueError(f"Salesforce cannot '{operation}'; use upsert, add or remove")

    def _clear_request(self, ids: list[str], context: SyncContext) -> PlannedRequest:
        obj = str(self.settings["object"])
        rows = [{"attributes": {"type": obj}, "id": i, self.audience_field(context): False} for i in ids]
        return (
            "PATCH",
            self._url("composite/sobjects"),
            self._headers(),
            {"allOrNone": False, "records": rows},
        )

    def plan_requests(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[PlannedRequest]:
        first = self.build_request(operation, records, context)
        if operation == "remove":
            return [first, self._clear_request(["{ids from the query}"], context)]
        return [first]

    def _raise_for_error(self, response: requests.Response, action: str) -> None:
        if response.ok:
            return
        errors = sf_errors(response)
        codes = {str(e.get("errorCode")) for e in errors}
        detail = "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in errors) or response.text[:200]
        usage = response.headers.get("Sforce-Limit-Info")
        message = f"Salesforce {action}: HTTP {response.status_code} {detail}" + (
            f" ({usage})" if usage else ""
        )
        status = response.status_code
        if "REQUEST_LIMIT_EXCEEDED" in codes:
            raise TransientError(message, http_status=status)
        if status >= 500 or "SERVER_UNAVAILABLE" in codes:
            raise TransientError(message, http_status=status)
        if status == 401:
            raise TerminalError(f"{message} (the access token is invalid or expired)", http_status=401)
        if status == 403:
            raise TerminalError(f"{message} (the user lacks API access or permission)", http_status=403)
        if status == 404:
            raise TerminalError(
                f"{message} (check object, external_id_field and api_version)", http_status=404
            )
        raise BatchRejected(message, http_status=status)

    def _describe(self) -> dict[str, Any]:
        obj = quote(str(self.settings["object"]), safe="")
        response = self.send_request(("GET", self._url(f"sobjects/{obj}/describe"), self._headers(), None))
        self._raise_for_error(response, "describe")
        return response.json()

    # -- the contract ----------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            fields = {f["name"].lower(): f for f in self._describe().get("fields") or []}
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        field = fields.get(self._ext.lower())
        if field is None or not (field.get("externalId") or field.get("idLookup")):
            return CheckResult(
                False, f"{self.settings['object']}.{self._ext} is missing or not an external id field"
            )
        return CheckResult(True, f"{self.settings['object']} upsertable by {self._ext}")

    def prepare(self, context: SyncContext) -> None:
        if context.mode != "audience":
            return
        name = self.audience_field(context)
        if context.state.get("audience_field") == name:
            return
        fields = {f["name"].lower() for f in self._describe().get("fields") or []}
        if name.lower() not in fields:
            body = {
                "FullName": f"{self.settings['object']}.{name}",
                "Metadata": {
                    "type": "Checkbox",
                    "defaultValue": "false",
                    "label": name.removesuffix("__c").replace("_", " ")[:40],
                    "description": f"Member of the warehouse segment synced by '{context.sync_name}'",
                },
            }
            response = self.send_request(
                ("POST", self._url("tooling/sobjects/CustomField"), self._headers(), body)
            )
            self._raise_for_error(response, f"create field {name}")
        context.state["audience_field"] = name

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, results = self._normalised(records)
        if not kept:
            return results
        response = self.send_request(self.build_request(operation, [r for r, _ in kept], context))
        self._raise_for_error(response, f"{operation}")
        if operation == "remove":
            return results + self._remove(response.json(), kept, context)
        return results + self._results(response.json(), kept, response.status_code)

    def _remove(
        self, body: Mapping[str, Any], kept: list[tuple[Record, dict[str, Any]]], context: SyncContext
    ) -> list[RecordResult]:
        """Records that do not exist are not in the audience: removal succeeded for them."""
        ids_by_ext: dict[str, list[str]] = {}
        for row in body.get("records") or []:
            ids_by_ext.setdefault(str(row.get(self._ext)).lower(), []).append(str(row["Id"]))
        ids = [i for _, fields in kept for i in ids_by_ext.get(fields[self._ext].lower(), [])]
        failed: dict[str, str] = {}
        if ids:
            response = self.send_request(self._clear_request(ids, context))
            self._raise_for_error(response, "clear audience field")
            body = response.json()
            if not isinstance(body, list) or len(body) != len(ids):
                raise BatchRejected(
                    f"Salesforce returned {len(body) if isinstance(body, list) else 'no'} results for {len(ids)} ids"
                )
            for record_id, result in zip(ids, body, strict=True):
                if not result.get("success"):
                    failed[record_id] = self._reason(result)
        out = []
        for record, fields in kept:
            reasons = [failed[i] for i in ids_by_ext.get(fields[self._ext].lower(), []) if i in failed]
            out.append(
                RecordResult(
                    record.key, ok=not reasons, http_status=200, reason=reasons[0] if reasons else None
                )
            )
        return out

    def _results(
        self, body: Any, kept: list[tuple[Record, dict[str, Any]]], status: int
    ) -> list[RecordResult]:
        if not isinstance(body, list) or len(body) != len(kept):
            raise BatchRejected(
                f"Salesforce returned {len(body) if isinstance(body, list) else 'no'} results for {len(kept)} records"
            )
        return [
            RecordResult(record.key, ok=True, http_status=status)
            if result.get("success")
            else RecordResult(record.key, ok=False, http_status=status, reason=self._reason(result))
            for (record, _), result in zip(kept, body, strict=True)
        ]

    @staticmethod
    def _reason(result: Mapping[str, Any]) -> str:
        errors = result.get("errors") or [{}]
        first = errors[0]
        message = str(first.get("message") or "")
        named = [f for f in first.get("fields") or [] if f not in message]
        fields = f" [{', '.join(named)}]" if named else ""
        return f"{first.get('statusCode', 'ERROR')}: {message}{fields}"
