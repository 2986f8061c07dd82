"""Generic webhook, signed per Standard Webhooks (https://www.standardwebhooks.com, spec v1.0.0).

API: one ``POST <url>`` per batch with a JSON body
``{"type": "cdp.sync.<operation>", "timestamp": ..., "data": {"sync", "operation", "records": [{"key", "fields"}]}}``
and the headers ``webhook-id`` (stable across retries of the same batch: the receiver's idempotency key),
``webhook-timestamp`` (unix seconds of the attempt) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one per secret for zero-downtime rotation). The
secret is ``whsec_<base64>``, read from the environment variable the sync names.

Batch limit: 1,000 records per request (bodies stay well under 1 MB). Rate limit: whatever the receiver
says: ``requests_per_second`` and ``max_concurrency`` settings. Answers: 2xx delivered (a JSON body
``{"rejected": [{"key", "reason"}]}`` rejects single records); 429/408/5xx transient, honouring
``Retry-After``; 410 terminal (the receiver wants no more webhooks); 401/403/404 and redirects terminal
(wrong secret or URL); 413 and other 4xx reject the batch, so the engine splits it to find the bad records.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import requests

from reverse_etl.destinations.base import (
    MODES,
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
    raise_for_transport,
    retry_after_seconds,
)

SECRET_PREFIX = "whsec_"
TRANSIENT_STATUSES = frozenset({408, 425, 429})
TERMINAL_STATUSES = frozenset({401, 403, 404, 410})


def decode_secret(value: str, *, where: str = "webhook secret") -> bytes:
    """``whsec_<base64>`` to key bytes (the prefix is optional, the base64 is not)."""
    raw = value[len(SECRET_PREFIX) :] if value.startswith(SECRET_PREFIX) else value
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{where}: not a Standard Webhooks secret; expected whsec_<base64 of 24-64 random bytes>"
        ) from None
    if len(key) < 16:
        raise ConfigError(f"{where}: the secret decodes to {len(key)} bytes; use 24 to 64 random bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` signature of one attempt."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode()


def message_id(sync_name: str, operation: str, records: Sequence[Record]) -> str:
    """Derived from the batch's content, so every retry of a batch carries the same id."""
    digest = hashlib.sha256()
    digest.update(f"{sync_name}\0{operation}\0".encode())
    for record in records:
        digest.update(record.key.encode() + b"\0")
        digest.update(json.dumps(record.fields, sort_keys=True, default=str).encode() + b"\0")
    return "msg_" + base64.b32encode(digest.digest()[:15]).decode().lower()


class WebhookDestination(Destination):
    name = "webhook"
    title = "Webhook (Standard Webhooks)"
    modes = MODES
    limits = Limits(
        max_batch_size=1000, requests_per_second=None, max_concurrency=4, max_payload_bytes=1_000_000
    )
    settings_spec = (
        SettingSpec("url", help="the receiver's URL, e.g. https://example.com/hooks/cdp"),
        SettingSpec(
            "secret", secret=True, help="environment variable holding the whsec_... signing secret(s)"
        ),
        SettingSpec(
            "event_type",
            required=False,
            default="cdp.sync",
            help="event type prefix; the operation is appended",
        ),
        SettingSpec("headers", required=False, default=None, help="extra (non-secret) headers as a mapping"),
        SettingSpec("requests_per_second", required=False, default=None, help="the receiver's rate limit"),
        SettingSpec("max_concurrency", required=False, default=4, help="parallel requests"),
        SettingSpec(
            "timeout", required=False, default=30, help="request timeout in seconds (15-30 recommended)"
        ),
        SettingSpec(
            "required_fields",
            required=False,
            default=None,
            help="fields a record must have (non-empty) to be sent",
        ),
    )
    identifier_fields = ()

    def __init__(self, settings: Mapping[str, Any], *, source: str = "<settings>") -> None:
        super().__init__(settings, source=source)
        s = self.settings
        if not str(s["url"]).startswith(("http://", "https://")):
            raise ConfigError(
                f"{source}: url {s['url']!r} must start with https:// (or http:// for local tests)"
            )
        self.keys = [decode_secret(part, where=f"{source}: secret") for part in str(s["secret"]).split()]
        if not self.keys:
            raise ConfigError(
                f"{source}: secret: the environment variable is empty; set it to whsec_<base64>"
            )
        headers = s.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise ConfigError(f"{source}: headers must be a mapping of header name to value")
        self.extra_headers = {str(k): str(v) for k, v in headers.items()}
        required = s.get("required_fields") or []
        if isinstance(required, str):
            required = [required]
        if not isinstance(required, list) or not all(isinstance(f, str) for f in required):
            raise ConfigError(f"{source}: required_fields must be a list of field names, e.g. [email]")
        self.required_fields: list[str] = required
        rps = s.get("requests_per_second")
        concurrency = 1 if s.get("max_concurrency") is None else s["max_concurrency"]
        for key, value in (
            ("requests_per_second", rps),
            ("max_concurrency", concurrency),
            ("timeout", s["timeout"]),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise ConfigError(f"{source}: {key} must be a positive number, not {value!r}")
        # The receiver's limits are settings, so this instance's limits shadow the class defaults.
        self.limits = Limits(
            max_batch_size=type(self).limits.max_batch_size,
            requests_per_second=float(rps) if rps else None,
            max_concurrency=int(concurrency),
            max_payload_bytes=type(self).limits.max_payload_bytes,
        )

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """Receivers define their own identifiers; the sync may name fields a record cannot go without."""
        missing = [f for f in self.required_fields if fields.get(f) in (None, "")]
        if missing:
            return None, f"missing required field(s): {', '.join(missing)}"
        return dict(fields), None

    def check(self) -> CheckResult:
        """Standard Webhooks has no probe call: send an empty, signed ``cdp.sync.check`` event."""
        ctx = SyncContext(sync_name="check", mode="upsert", primary_key="id")
        method, url, headers, body = self.build_request("check", [], ctx)
        try:
            resp = self.session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=self.settings["timeout"],
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return CheckResult(False, f"cannot reach {url}: {type(exc).__name__}")
        if 200 <= resp.status_code < 300:
            return CheckResult(True, f"{url} accepted a signed test event")
        return CheckResult(False, f"{url} answered HTTP {resp.status_code}")

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        now = time.time()
        body = {
            "type": f"{self.settings['event_type']}.{operation}",
            "timestamp": datetime.fromtimestamp(now, timezone.utc).isoformat().replace("+00:00", "Z"),
            "data": {
                "sync": context.sync_name,
                "mode": context.mode,
                "operation": operation,
                "primary_key": context.primary_key,
                "records": [{"key": r.key, "fields": dict(r.fields)} for r in records],
            },
        }
        raw = json.dumps(body, separators=(",", ":"), default=str).encode()
        msg_id = message_id(context.sync_name, operation, records)
        ts = int(now)
        headers = {
            **self.extra_headers,
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": " ".join(sign(key, msg_id, ts, raw) for key in self.keys),
        }
        return "POST", str(self.settings["url"]), headers, raw

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        method, url, headers, body = self.build_request(operation, records, context)
        max_bytes = self.limits.max_payload_bytes
        if max_bytes and len(body) > max_bytes and len(records) > 1:
            raise BatchRejected(f"body of {len(body)} bytes is over {max_bytes}; splitting", http_status=413)
        try:
            resp = self.session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=float(self.settings["timeout"]),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise raise_for_transport(exc) from exc
        status = resp.status_code
        if 200 <= status < 300:
            return self._results(resp, records)
        detail = _detail(resp)
        if status in TRANSIENT_STATUSES or status >= 500:
            raise TransientError(
                f"HTTP {status}{detail}", retry_after=retry_after_seconds(resp), http_status=status
            )
        if status == 410:
            raise TerminalError(
                f"HTTP 410 Gone: the receiver wants no more webhooks; disable this sync{detail}",
                http_status=410,
            )
        if status in (401, 403):
            raise TerminalError(
                f"HTTP {status}: the receiver refused the signature; check the secret{detail}",
                http_status=status,
            )
        if status == 404:
            raise TerminalError(f"HTTP 404: no receiver at {url}; check the url{detail}", http_status=404)
        if 300 <= status < 400:
            raise TerminalError(
                f"HTTP {status} redirect to {resp.headers.get('Location')}: update the url",
                http_status=status,
            )
        raise BatchRejected(f"HTTP {status}{detail}", http_status=status)

    @staticmethod
    def _results(resp: requests.Response, records: Sequence[Record]) -> list[RecordResult]:
        rejected: dict[str, str] = {}
        try:
            body = resp.json() if resp.content else None
        except ValueError:
            body = None
        if isinstance(body, Mapping) and isinstance(body.get("rejected"), list):
            for item in body["rejected"]:
                if isinstance(item, Mapping) and "key" in item:
                    rejected[str(item["key"])] = str(item.get("reason") or "rejected by the receiver")
        return [
            RecordResult(r.key, ok=False, http_status=resp.status_code, reason=rejected[r.key])
            if r.key in rejected
            else RecordResult(r.key, ok=True, http_status=resp.status_code)
            for r in records
        ]


def _detail(resp: requests.Response) -> str:
    text = (resp.text or "").strip()
    return f": {text[:200]}" if text else ""
