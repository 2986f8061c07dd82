"""Braze ``/users/track`` emulator: users keyed by external_id (or email), attribute updates, and the
non-fatal ``errors[]`` list with each refused object's index. At most 75 attribute objects per
request; throttling is 429 with ``X-RateLimit-Reset`` in epoch seconds.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

MAX_OBJECTS = 75
IDENTIFIERS = ("external_id", "user_alias", "braze_id", "email", "phone")


class BrazeEmulator(Emulator):
    name = "braze"
    default_credentials: ClassVar[dict[str, str]] = {"api_key": "braze-test-key"}

    def __init__(
        self, faults: FaultConfig | None = None, *, api_key: str = "braze-test-key", **kwargs: Any
    ) -> None:
        super().__init__(faults, **kwargs)
        self.api_key = api_key
        self.users: dict[str, dict[str, Any]] = {}  # "external_id:<id>" or "email:<email>" -> attributes

    def emails_with(self, attribute: str, value: Any = True) -> set[str]:
        with self.lock:
            return {u.get("email") for u in self.users.values() if u.get(attribute) == value}

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.authenticate_failure()
        return None

    def authenticate_failure(self) -> Response:
        return Response(401, {"message": "Invalid API key: check your key and its permissions"})

    def throttle_response(self) -> Response:
        reset = time.time() + self.faults.retry_after
        headers = {
            "X-RateLimit-Limit": "3000",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{reset:.3f}",
        }
        return Response(429, {"message": "Rate limit exceeded"}, headers)

    def server_error_response(self) -> Response:
        return Response(503, {"message": "Service Unavailable"})

    @route("POST", "/users/track")
    def track(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return Response(400, {"message": "Bad syntax"})
        if not isinstance(body, dict):
            return Response(400, {"message": "Bad syntax"})
        attributes = body.get("attributes") or []
        if not isinstance(attributes, list):
            return Response(400, {"message": "'attributes' must be an array"})
        for key in ("attributes", "events", "purchases"):
            if len(body.get(key) or []) > MAX_OBJECTS:
                return Response(
                    400,
                    {
                        "message": "Max Input Length Exceeded",
                        "errors": [f"{key} has more than {MAX_OBJECTS} objects"],
                    },
                )
        if not any(body.get(k) for k in ("attributes", "events", "purchases")):
            return Response(400, {"message": "Request must contain attributes, events or purchases"})
        errors = []
        processed = 0
        for index, item in enumerate(attributes):
            problem = self._problem(item)
            if problem:
                errors.append({"type": problem, "input_array": "attributes", "index": index})
                continue
            key = (
                f"external_id:{item['external_id']}"
                if item.get("external_id")
                else f"email:{item.get('email')}"
            )
            if key not in self.users:
                if item.get("_update_existing_only", "external_id" in item):
                    processed += 1  # Braze silently skips updates to unknown users
                    continue
                self.users[key] = {}
            for name, value in item.items():
                if name == "_update_existing_only":
                    continue
                if value is None:
                    self.users[key].pop(name, None)
                else:
                    self.users[key][name] = value
            processed += 1
        reply: dict[str, Any] = {"message": "success", "attributes_processed": processed}
        if errors:
            reply["errors"] = errors
        return Response(201, reply)

    def _problem(self, item: Any) -> str | None:
        if not isinstance(item, dict):
            return "attributes must be objects"
        if not any(item.get(k) for k in IDENTIFIERS):
            return "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
        for value in item.values():
            if isinstance(value, str) and value in self.faults.reject_values:
                return f"provided value '{value}' is blacklisted and disallowed"
        email = item.get("email")
        if email is not None and "@" not in str(email):
            return f"'{email}' is not a valid email address"
        return None
