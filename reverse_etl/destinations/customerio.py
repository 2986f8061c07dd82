"""Customer.io Journeys: people through the Track API, audiences as manual segments.

API: ``POST /api/v2/batch`` (Track API, HTTP Basic ``site_id:api_key``) identifies people:
``{"batch": [{"type": "person", "identifiers": {"id"|"email": ...}, "action": "identify",
"attributes": {...}}]}``. Audience mode identifies the people, then
``POST /api/v1/segments/{id}/add_customers?id_type=id|email`` with ``{"ids": [...]}`` (and
``remove_customers`` on removal). Manual segments are found or created through the App API
(``GET``/``POST /v1/segments`` on api.customer.io, Bearer app key), which is the only part that needs the
optional ``app_api_key``.
Batch limit: 1,000 ids per segment call; a v2 batch request at most 500 KB with 32 KB per entry (people
with more are rejected locally; a larger request is split). Rate limit: fair use of about 100
requests/s per workspace; over it Customer.io answers 429 with no wait hint.

Entries the batch refuses come back as ``errors[]`` with their ``batch_index``; everything else is
identified. Timestamps are sent as Unix seconds, as Customer.io expects.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

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

DEFAULT_BASE_URL = "https://track.customer.io"
DEFAULT_APP_URL = "https://api.customer.io"
IDENTIFIERS = ("id", "email")
ID_FIELDS = ("id", "user_id", "customer_id")
MAX_REQUEST_BYTES = 500_000
MAX_ENTRY_BYTES = 32_000


def attribute_value(value: Any) -> Any:
    """Customer.io reads timestamps as Unix seconds."""
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp())
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp())
    return value


class CustomerIoPeople(Destination):
    name = "customerio"
    title = "Customer.io people and manual segments"
    modes = ("upsert", "audience")
    limits = Limits(
        max_batch_size=1_000, requests_per_second=50.0, max_concurrency=2, max_payload_bytes=MAX_REQUEST_BYTES
    )
    identifier_fields = ("id", "user_id", "email")
    settings_spec = (
        SettingSpec("site_id", help="Track API site id (Workspace Settings > API credentials)"),
        SettingSpec("api_key", secret=True, help="env var holding the Track API key for that site id"),
        SettingSpec(
            "identifier",
            required=False,
            default="id",
            help="how the workspace identifies people: id or email",
        ),
        SettingSpec("segment_id", required=False, help="manual segment for audience mode"),
        SettingSpec(
            "segment_name", required=False, help="manual segment name to find or create (needs app_api_key)"
        ),
        SettingSpec(
            "app_api_key",
            required=False,
            secret=True,
            help="env var holding an App API key, to find or create the manual segment",
        ),
        SettingSpec(
            "base_url",
            required=False,
            default=DEFAULT_BASE_URL,
            help="Track API host (EU: https://track-eu.customer.io)",
        ),
        SettingSpec(
            "app_base_url",
            required=False,
            default=DEFAULT_APP_URL,
            help="App API host (EU: https://api-eu.customer.io)",
        ),
    )

    def __init__(self, settings: Mapping[str, Any], *, source: str = "<settings>") -> None:
        super().__init__(settings, source=source)
        if self.settings["identifier"] not in IDENTIFIERS:
            raise ConfigError(f"{source}: identifier {self.settings['identifier']!r} must be id or email")

    # -- identifiers -----------------------------------------------------------------------------

    @property
    def _id_type(self) -> str:
        return str(self.settings["identifier"])

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        email = hashing.normalise_email(fields.get("email"))
        person_id = next((str(fields[k]).strip() for k in ID_FIELDS if fields.get(k) not in (None, "")), "")
        ident = person_id if self._id_type == "id" else email
        if not ident:
            return None, f"no {'id (id, user_id or customer_id)' if self._id_type == 'id' else 'valid email'}"
        attributes = {k: attribute_value(v) for k, v in fields.items() if k not in ID_FIELDS and k != "email"}
        if email:
            attributes["email"] = email
        entry = {
            "type": "person",
            "identifiers": {self._id_type: ident},
            "action": "identify",
            "attributes": attributes,
        }
        size = len(json.dumps(entry, default=str).encode())
        if size > MAX_ENTRY_BYTES:
            return (
                None,
                f"the person's attributes are {size} bytes; Customer.io takes at most {MAX_ENTRY_BYTES}",
            )
        return entry, None

    # -- requests --------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{str(self.settings['base_url']).rstrip('/')}/{path.lstrip('/')}"

    def _headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.settings['site_id']}:{self.settings['api_key']}".encode()).decode()
        return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def _app(self, method: str, path: str, body: Any = None) -> requests.Response:
        key = self.settings.get("app_api_key")
        if not key:
            raise ConfigError(
                f"{self.source}: Customer.io audience mode needs segment_id, or app_api_key to find or create "
                "the manual segment by name"
            )
        url = f"{str(self.settings['app_base_url']).rstrip('/')}/{path.lstrip('/')}"
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        return self.send_request((method, url, headers, body))

    def _segment_id(self, context: SyncContext, *, planning: bool = False) -> str:
        return self._prepared_id(
            context,
            "segment_id",
            planning=planning,
            missing="no Customer.io segment id; prepare() was not run or creation failed",
        )

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        """The identify batch for upsert/add; the segment removal for remove."""
        self._check_batch_size(records, "the {limit} people per request")
        kept, _ = self._normalised(records)
        if operation in ("upsert", "add"):
            return "POST", self._url("api/v2/batch"), self._headers(), {"batch": [e for _, e in kept]}
        if operation == "remove":
            return self._segment_request("remove_customers", [self._ident(e) for _, e in kept], context, True)
        raise ValueError(f"Customer.io cannot '{operation}'; use upsert, add or remove")

    def _ident(self, entry: Mapping[str, Any]) -> str:
        return str(entry["identifiers"][self._id_type])

    def _segment_request(
        self, action: str, ids: list[str], context: SyncContext, planning: bool = False
    ) -> PlannedRequest:
        segment = quote(self._segment_id(context, planning=planning), safe="{}")
        url = self._url(f"api/v1/segments/{segment}/{action}?id_type={self._id_type}")
        return "POST", url, self._headers(), {"ids": ids}

    def plan_requests(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[PlannedRequest]:
        first = self.build_request(operation, records, context)
        if operation == "add":
            ids = [self._ident(e) for _, e in self._normalised(records)[0]]
            return [first, self._segment_request("add_customers", ids, context, True)]
        return [first]

    def _error_body(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _raise_for_error(
        self, response: requests.Response, action: str, *, batch_errors: bool = False
    ) -> None:
        if response.ok:
            return
        body = self._error_body(response)
        if batch_errors and response.status_code == 400 and body.get("errors"):
            return  # per-entry errors, read by the caller
        meta = body.get("meta") or {}
        detail = (
            meta.get("error") or "; ".join(str(e) for e in meta.get("errors") or []) or response.text[:200]
        )
        message = f"Customer.io {action}: HTTP {response.status_code}: {detail}"
        status = response.status_code
        if status == 429:
            raise TransientError(message, retry_after=retry_after_seconds(response), http_status=429)
        if status >= 500:
            raise TransientError(message, http_status=status)
        if status in (401, 403):
            raise TerminalError(
                f"{message} (check site_id and api_key, and that base_url is your workspace's region)",
                http_status=status,
            )
        if status == 404:
            raise TerminalError(
                f"{message} (the segment does not exist or is not a manual segment)", http_status=404
            )
        raise BatchRejected(message, http_status=status)

    # -- the contract ----------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            response = self.send_request(("GET", self._url("api/v1/accounts/region"), self._headers(), None))
            self._raise_for_error(response, "check")
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, f"Track API credentials accepted (region {response.json().get('region')})")

    def prepare(self, context: SyncContext) -> None:
        if context.mode != "audience":
            return
        if self.settings.get("segment_id"):
            context.state["segment_id"] = str(self.settings["segment_id"])
            return
        name = str(self.settings.get("segment_name") or context.sync_name)
        if context.state.get("segment_id") and context.state.get("segment_name") == name:
            return
        response = self._app("GET", "v1/segments")
        self._raise_for_error(response, "list segments")
        for segment in response.json().get("segments") or []:
            if segment.get("name") == name and segment.get("type") == "manual":
                context.state.update(segment_id=str(segment["id"]), segment_name=name)
                return
        body = {
            "segment": {
                "name": name,
                "description": f"Synced from the warehouse by sync '{context.sync_name}'",
            }
        }
        response = self._app("POST", "v1/segments", body)
        self._raise_for_error(response, "create segment")
        context.state.update(segment_id=str(response.json()["segment"]["id"]), segment_name=name)

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, results = self._normalised(records)
        if not kept:
            return results
        if operation in ("add", "remove"):
            self._segment_id(context)
        request = self.build_request(operation, [r for r, _ in kept], context)
        if operation == "remove":
            response = self.send_request(request)
            self._raise_for_error(response, "remove from segment")
            return results + [RecordResult(r.key, ok=True, http_status=response.status_code) for r, _ in kept]
        size = len(json.dumps(request[3], default=str).encode())
        if size > MAX_REQUEST_BYTES and len(kept) > 1:
            raise BatchRejected(
                f"request of {size} bytes is over Customer.io's 500 KB; splitting", http_status=413
            )
        response = self.send_request(request)
        self._raise_for_error(response, "batch identify", batch_errors=True)
        failed = self._batch_errors(self._error_body(response), len(kept))
        if operation == "add":
            ids = [self._ident(e) for n, (_, e) in enumerate(kept) if n not in failed]
            if ids:
                membership = self.send_request(self._segment_request("add_customers", ids, context))
                self._raise_for_error(membership, "add to segment")
        for n, (record, _) in enumerate(kept):
            results.append(
                RecordResult(
                    record.key, ok=n not in failed, http_status=response.status_code, reason=failed.get(n)
                )
            )
        return results

    @staticmethod
    def _batch_errors(body: Mapping[str, Any], count: int) -> dict[int, str]:
        failed: dict[int, str] = {}
        for error in body.get("errors") or []:
            index = error.get("batch_index") if isinstance(error, dict) else None
            if not isinstance(index, int) or not 0 <= index < count:
                raise BatchRejected(
                    f"Customer.io reported an error it did not attribute to an entry: {error}"
                )
            field = f" ({error['field']})" if error.get("field") else ""
            failed.setdefault(index, f"{error.get('reason', 'invalid')}{field}: {error.get('message', '')}")
        return failed
