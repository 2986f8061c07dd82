"""Braze user attributes through ``POST /users/track``.

API: ``POST /users/track`` with ``{"attributes": [...]}``; each object names the user by
``external_id`` (or by ``email`` when the record has no id, creating alias-free users with
``_update_existing_only: false``). Audience mode sets a boolean custom attribute (default
``cdp_<sync name>``) to true on add and false on remove, which Braze segments can filter on.
Batch limit: 75 attribute objects per request (400 "Max Input Length Exceeded" beyond).
Rate limit: 3,000 requests per 3 seconds per workspace; over it Braze answers 429 and says when the
window resets in ``X-RateLimit-Reset`` (epoch seconds).

Braze accepts the request and lists the objects it refused in ``errors[]`` with their ``index`` in
the ``attributes`` array, so per-record results come from that list.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from reverse_etl.destinations import hashing
from reverse_etl.destinations.base import (
    BatchRejected,
    CheckResult,
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

DEFAULT_BASE_URL = "https://rest.iad-01.braze.com"
RESERVED = {"external_id", "user_id", "email", "phone"}


class BrazeUsers(Destination):
    name = "braze"
    title = "Braze users"
    modes = ("upsert", "audience")
    limits = Limits(max_batch_size=75, requests_per_second=100.0, max_concurrency=4)
    identifier_fields = ("external_id", "user_id", "email", "phone")
    settings_spec = (
        SettingSpec("api_key", secret=True, help="env var holding a REST API key with users.track"),
        SettingSpec(
            "audience_attribute",
            required=False,
            help="boolean attribute for audience mode (default cdp_<sync>)",
        ),
        SettingSpec(
            "default_phone_country", required=False, default="us", help="country of national phone numbers"
        ),
        SettingSpec(
            "base_url", required=False, default=DEFAULT_BASE_URL, help="your instance's REST endpoint"
        ),
    )

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        out: dict[str, Any] = {}
        external = fields.get("external_id") or fields.get("user_id")
        if external not in (None, ""):
            out["external_id"] = str(external)
        email = hashing.normalise_email(fields.get("email"))
        if email:
            out["email"] = email
        phone = hashing.normalise_phone_e164(fields.get("phone"), self.settings["default_phone_country"])
        if phone:
            out["phone"] = phone
        if not out.get("external_id") and not out.get("email"):
            return None, "no external_id, user_id or valid email"
        for key, value in fields.items():
            if key not in RESERVED:
                out[key] = value
        return out, None

    def audience_attribute(self, context: SyncContext) -> str:
        return str(self.settings.get("audience_attribute") or f"cdp_{context.sync_name}")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings['api_key']}", "Content-Type": "application/json"}

    def _url(self, path: str) -> str:
        return f"{str(self.settings['base_url']).rstrip('/')}/{path}"

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        if operation not in ("upsert", "update", "add", "remove"):
            raise ValueError(f"Braze cannot '{operation}'; use upsert, update, add or remove")
        self._check_batch_size(records, "Braze's {limit} attributes per request")
        attributes = []
        for _, fields in self._normalised(records)[0]:
            item = dict(fields)
            if operation in ("add", "remove"):
                item = {k: v for k, v in item.items() if k in ("external_id", "email", "phone")}
                item[self.audience_attribute(context)] = operation == "add"
            # A user named only by email is created unless this is a pure update.
            item["_update_existing_only"] = operation in ("update", "remove")
            attributes.append(item)
        return "POST", self._url("users/track"), self._headers(), {"attributes": attributes}

    def _raise_for_error(self, response: requests.Response, action: str) -> None:
        if response.ok:
            return
        try:
            body = response.json()
        except ValueError:
            body = {}
        message = f"Braze {action}: HTTP {response.status_code}: {body.get('message') if isinstance(body, dict) else response.text[:200]}"
        if response.status_code == 429:
            raise TransientError(message, retry_after=self._reset_wait(response), http_status=429)
        if response.status_code >= 500:
            raise TransientError(message, http_status=response.status_code)
        if response.status_code in (401, 403, 404):
            raise TerminalError(
                f"{message} (check the REST key, its users.track permission and the instance URL)",
                http_status=response.status_code,
            )
        raise BatchRejected(message, http_status=response.status_code)

    @staticmethod
    def _reset_wait(response: requests.Response) -> float | None:
        explicit = retry_after_seconds(response)
        if explicit is not None:
            return explicit
        reset = response.headers.get("X-RateLimit-Reset")
        try:
            return max(0.0, float(reset) - time.time()) if reset else None
        except ValueError:
            return None

    def check(self) -> CheckResult:
        """Braze has no read endpoint a users.track key may call; an empty track request is
        authenticated first, so 2xx or 400 (nothing to track) means the key works."""
        try:
            response = self.send_request(
                ("POST", self._url("users/track"), self._headers(), {"attributes": []})
            )
        except TransientError as exc:
            return CheckResult(False, str(exc))
        if response.ok or response.status_code == 400:
            return CheckResult(True, "REST key accepted")
        return CheckResult(False, f"Braze check: HTTP {response.status_code}: {response.text[:200]}")

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, results = self._normalised(records)
        if not kept:
            return results
        response = self.send_request(self.build_request(operation, [r for r, _ in kept], context))
        self._raise_for_error(response, "users/track")
        body = response.json()
        failed: dict[int, str] = {}
        for error in body.get("errors") or []:
            if error.get("input_array") == "attributes" and isinstance(error.get("index"), int):
                failed.setdefault(error["index"], str(error.get("type")))
            else:
                raise BatchRejected(f"Braze reported an error it did not attribute to a record: {error}")
        for n, (record, _) in enumerate(kept):
            results.append(
                RecordResult(
                    record.key, ok=n not in failed, http_status=response.status_code, reason=failed.get(n)
                )
            )
        return results
