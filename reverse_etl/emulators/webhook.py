"""A Standard Webhooks receiver that keeps the state a sync should have produced.

It verifies every request's signature (constant-time, timestamp within tolerance) and answers 401 when
it does not verify; applies each record of a batch (upsert/update/insert/add/append set the record,
remove deletes it); and logs every delivery, so tests compare ``records`` with the source and count
duplicate deliveries. Faults (``FaultConfig``): throttling (429 + Retry-After), 5xx, slow answers that
time the client out, ``reject_values`` (400 for the whole batch when any record carries one of them),
auth failure. ``record_reject_values`` rejects single records in a 200 answer; ``gone`` answers 410.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

WRITE_OPERATIONS = ("upsert", "update", "insert", "add", "append")


@dataclass(frozen=True)
class Delivery:
    message_id: str
    operation: str
    key: str
    fields: str  # the delivered fields as canonical JSON


# The signing secret the emulator expects unless told otherwise (a demo value, not a credential).
DEFAULT_SECRET = "whsec_" + base64.b64encode(b"emulator-secret-0123456789abcdef").decode()


class WebhookEmulator(Emulator):
    name = "webhook"
    path = "/webhook"

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        secret: str = DEFAULT_SECRET,
        tolerance_seconds: int = 300,
        record_reject_values: tuple[str, ...] = (),
        port: int = 0,
    ) -> None:
        super().__init__(faults, port=port)
        self.secret = secret
        raw = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
        self._key = base64.b64decode(raw)
        self.tolerance = tolerance_seconds
        self.record_reject_values = tuple(record_reject_values)
        self.gone = False
        self.records: dict[str, dict[str, Any]] = {}
        self.appended: list[tuple[str, dict[str, Any]]] = []
        self.deliveries: list[Delivery] = []
        self.message_ids: Counter[str] = Counter()
        self.rejected_signatures = 0
        self.accepted_at: list[float] = []  # monotonic arrival time of every accepted request

    @property
    def url(self) -> str:
        return self.base_url + self.path

    # -- test helpers ----------------------------------------------------------------------------

    def seed(self, key: str, fields: dict[str, Any]) -> None:
        """A record someone else put in the destination."""
        with self.lock:
            self.records[key] = dict(fields)

    def delivery_counts(self, operation: str | None = None) -> Counter[str]:
        with self.lock:
            return Counter(d.key for d in self.deliveries if operation is None or d.operation == operation)

    def duplicates(self) -> int:
        """Deliveries that repeat an earlier one exactly (same operation, key and fields)."""
        with self.lock:
            counts = Counter((d.operation, d.key, d.fields) for d in self.deliveries)
        return sum(n - 1 for n in counts.values())

    # -- protocol --------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        msg_id = request.headers.get("webhook-id")
        ts = request.headers.get("webhook-timestamp")
        sigs = request.headers.get("webhook-signature")
        if not (msg_id and ts and sigs):
            return self._unsigned("missing webhook-id, webhook-timestamp or webhook-signature")
        try:
            ts_int = int(ts)
        except ValueError:
            return self._unsigned("webhook-timestamp is not an integer")
        if abs(time.time() - ts_int) > self.tolerance:
            return self._unsigned("webhook-timestamp outside the tolerance")
        expected = hmac.new(self._key, f"{msg_id}.{ts}.".encode() + request.body, hashlib.sha256).digest()
        for sig in sigs.split():
            version, _, value = sig.partition(",")
            if version != "v1":
                continue
            try:
                given = base64.b64decode(value)
            except ValueError:
                continue
            if hmac.compare_digest(given, expected):
                return None
        return self._unsigned("no valid v1 signature")

    def _unsigned(self, why: str) -> Response:
        with self.lock:
            self.rejected_signatures += 1
        return Response(401, {"error": f"invalid signature: {why}"})

    @route("POST", "/webhook")
    def receive(self, request: Request) -> Response:
        if self.gone:
            return Response(410, {"error": "endpoint disabled"})
        try:
            body = json.loads(request.body)
            data = body["data"]
            operation = data["operation"]
            records = data["records"]
        except (ValueError, KeyError, TypeError):
            return Response(400, {"error": "body is not a cdp.sync event"})
        msg_id = request.headers["webhook-id"]
        if self.faults.reject_values and any(
            _contains(rec.get("fields"), self.faults.reject_values) for rec in records
        ):
            return Response(400, {"error": "batch contains a rejected value"})
        rejected: list[dict[str, str]] = []
        self.message_ids[msg_id] += 1
        self.accepted_at.append(time.monotonic())
        for rec in records:
            key = str(rec["key"])
            fields = rec.get("fields") or {}
            if self.record_reject_values and _contains(fields, self.record_reject_values):
                rejected.append({"key": key, "reason": "value not accepted by the receiver"})
                continue
            if operation == "update" and key not in self.records:
                rejected.append({"key": key, "reason": "no such record to update"})
                continue
            if operation == "insert" and key in self.records and self.records[key] != fields:
                rejected.append({"key": key, "reason": "record already exists"})
                continue
            self.deliveries.append(Delivery(msg_id, operation, key, json.dumps(fields, sort_keys=True)))
            if operation in WRITE_OPERATIONS:
                self.records[key] = dict(fields)
                if operation == "append":
                    self.appended.append((key, dict(fields)))
            elif operation == "remove":
                self.records.pop(key, None)
            elif operation != "check":
                rejected.append({"key": key, "reason": f"unknown operation {operation}"})
        return Response(200, {"accepted": len(records) - len(rejected), "rejected": rejected})


def _contains(fields: Any, values: tuple[str, ...]) -> bool:
    if not isinstance(fields, dict):
        return False
    return any(str(v) in values for v in fields.values() if v is not None)
