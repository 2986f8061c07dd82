"""Slack incoming-webhook emulator: webhooks by URL path, the messages they received, and Slack's
plain-text answers.

Behaviour follows Slack's: 200 ``ok`` (text/plain) on success; 400 ``invalid_payload`` for a body that
is not a JSON object, ``no_text`` when there is neither text nor blocks, ``invalid_blocks`` beyond 50
blocks, a header over 150 characters or a section over 3,000; ``too_many_attachments`` over 100; 404
``no_service`` for an unknown or revoked webhook; 410 ``channel_is_archived``; 429 with ``Retry-After``;
500 ``rollup_error``. Webhook URLs need no other credential.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from reverse_etl.emulators.base import Emulator, FaultConfig, Request, Response, route

DEFAULT_PATH = "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000
MAX_TEXT = 40_000
MAX_ATTACHMENTS = 100


def text_response(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, None, {"Content-Type": "text/plain", **(headers or {})}, raw=text.encode())


class SlackEmulator(Emulator):
    name = "slack"
    default_credentials: ClassVar[dict[str, str]] = {
        "webhook_url": f"https://hooks.slack.com/services/{DEFAULT_PATH}"
    }

    def __init__(
        self, faults: FaultConfig | None = None, *, webhooks: tuple[str, ...] = (DEFAULT_PATH,), **kwargs: Any
    ) -> None:
        super().__init__(faults, **kwargs)
        self.channels: dict[str, dict[str, Any]] = {
            path: {"archived": False, "messages": []} for path in webhooks
        }

    # -- inspection ------------------------------------------------------------------------------

    def messages(self, path: str = DEFAULT_PATH) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.channels[path]["messages"]]

    def archive(self, path: str = DEFAULT_PATH) -> None:
        with self.lock:
            self.channels[path]["archived"] = True

    # -- hooks -----------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        path = request.path.removeprefix("/services/")
        if path not in self.channels:
            return text_response(404, "no_service")
        if self.channels[path]["archived"]:
            return text_response(410, "channel_is_archived")
        return None

    def authenticate_failure(self) -> Response:
        return text_response(403, "invalid_token")

    def throttle_response(self) -> Response:
        return text_response(429, "rate_limited", {"Retry-After": f"{self.faults.retry_after:g}"})

    def server_error_response(self) -> Response:
        return text_response(500, "rollup_error")

    # -- routes ----------------------------------------------------------------------------------

    @route("POST", "/services/{team}/{bot}/{token}")
    def post(self, request: Request) -> Response:
        path = request.path.removeprefix("/services/")
        try:
            payload = json.loads(request.body or b"null")
        except ValueError:
            return text_response(400, "invalid_payload")
        if not isinstance(payload, dict):
            return text_response(400, "invalid_payload")
        text, blocks = payload.get("text"), payload.get("blocks")
        if not text and not blocks and not payload.get("attachments"):
            return text_response(400, "no_text")
        if len(payload.get("attachments") or []) > MAX_ATTACHMENTS:
            return text_response(400, "too_many_attachments")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
            return text_response(400, "invalid_payload")
        if blocks is not None and self._blocks_problem(blocks):
            return text_response(400, "invalid_blocks")
        if any(value in request.body.decode() for value in self.faults.reject_values):
            return text_response(400, "invalid_payload")
        self.channels[path]["messages"].append(payload)
        return text_response(200, "ok")

    @staticmethod
    def _blocks_problem(blocks: Any) -> str | None:
        if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
            return "blocks must be a list of at most 50"
        for block in blocks:
            kind = block.get("type") if isinstance(block, dict) else None
            text = (block.get("text") or {}) if isinstance(block, dict) else {}
            if kind == "header":
                if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= MAX_HEADER:
                    return "header needs plain_text of 1-150 characters"
            elif kind == "section":
                if (
                    text.get("type") not in ("mrkdwn", "plain_text")
                    or not 0 < len(text.get("text", "")) <= MAX_SECTION
                ):
                    return "section text must be 1-3000 characters"
            elif kind == "context":
                elements = block.get("elements")
                if not isinstance(elements, list) or not 0 < len(elements) <= 10:
                    return "context needs 1-10 elements"
            elif kind not in ("divider", "image", "actions", "rich_text"):
                return f"unknown block type {kind!r}"
        return None
