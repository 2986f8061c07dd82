"""Slack incoming webhooks: segment digests and alerts posted to a channel.

API: ``POST <webhook URL>`` with ``{"text": ..., "blocks": [...]}`` (Block Kit); Slack answers 200 with
the plain-text body ``ok``, or a status with a plain-text error: 400 ``invalid_payload``, ``no_text``,
``invalid_blocks``, ``too_many_attachments``; 403 ``action_prohibited``/``invalid_token``; 404
``no_service``/``channel_not_found`` (the webhook was revoked); 410 ``channel_is_archived``; 500
``rollup_error``. The URL is the credential, so it is a secret setting and never appears in an error.
Batch limit: one message per request; a batch becomes one digest message of at most 40 lines, which keeps
it within Block Kit's 50 blocks and 3,000 characters per section. Rate limit: about one message per second
per webhook, with short bursts; over it Slack answers 429 with ``Retry-After`` in seconds.

Each batch is posted as one digest: a header such as ``vip: 12 entered``, then one line per record that
names the person (``label_field``, else name, email, first and last name, or an id) followed by the
fields chosen with ``fields``. Records with nothing to name them by are rejected rather than posted as
blank lines. ``post_text`` sends a plain alert through the same webhook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

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

DEFAULT_BASE_URL = "https://hooks.slack.com"
VERBS = {
    "add": "entered",
    "remove": "left",
    "append": "new",
    "insert": "new",
    "upsert": "new or changed",
}
MAX_LINES = 40
MAX_LINE_CHARS = 280
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_TEXT_CHARS = 40_000
ID_FIELDS = ("external_id", "user_id", "customer_id", "id")
TERMINAL = {
    403: "Slack refused the webhook (action_prohibited or invalid_token): create a new webhook",
    404: "the webhook no longer exists (no_service or channel_not_found): create a new webhook",
    410: "the channel is archived (channel_is_archived): unarchive it or point the sync at a new webhook",
}


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SlackWebhook(Destination):
    name = "slack"
    title = "Slack incoming webhook"
    modes = ("audience", "append", "insert", "upsert")
    limits = Limits(max_batch_size=MAX_LINES, requests_per_second=1.0, max_concurrency=1)
    identifier_fields = ("name", "email", "first_name", "last_name", *ID_FIELDS)
    settings_spec = (
        SettingSpec(
            "webhook_url",
            secret=True,
            help="env var holding the webhook URL (https://hooks.slack.com/services/...)",
        ),
        SettingSpec("title", required=False, help="digest title (default: the sync name)"),
        SettingSpec(
            "label_field", required=False, help="field that names each record (default: name, email, ...)"
        ),
        SettingSpec("fields", required=False, help="fields shown after the label, in order (default: none)"),
        SettingSpec(
            "base_url", required=False, help="replace scheme and host of the webhook URL (proxies and tests)"
        ),
    )

    def __init__(self, settings: Mapping[str, Any], *, source: str = "<settings>") -> None:
        super().__init__(settings, source=source)
        secret = str(self.settings["webhook_url"]).strip()
        parts = urlsplit(secret)
        base = self.settings.get("base_url")
        if parts.scheme in ("http", "https") and parts.netloc:
            path = parts.path
        elif base:
            path = "/services/" + secret.strip("/").removeprefix("services/")  # the T…/B…/… part only
        else:
            raise ConfigError(
                f"{source}: webhook_url: the environment variable does not hold a URL; "
                "it should be https://hooks.slack.com/services/T…/B…/…"
            )
        self.path = path
        self.url = f"{str(base).rstrip('/')}{path}" if base else secret
        shown = self.settings.get("fields") or []
        if isinstance(shown, str):
            shown = [shown]
        if not isinstance(shown, list) or not all(isinstance(f, str) for f in shown):
            raise ConfigError(f"{source}: fields must be a list of field names, e.g. [plan, lifetime_value]")
        self.shown: list[str] = shown

    def secret_values(self) -> list[str]:
        """The URL and its path: either one lets anybody post to the channel."""
        return [*super().secret_values(), self.path]

    # -- records ---------------------------------------------------------------------------------

    def label(self, fields: Mapping[str, Any]) -> str | None:
        """What a reader recognises a record by."""
        if self.settings.get("label_field"):
            value = fields.get(self.settings["label_field"])
            return str(value).strip() or None if value is not None else None
        if str(fields.get("name") or "").strip():
            return str(fields["name"]).strip()
        email = hashing.normalise_email(fields.get("email"))
        if email:
            return email
        full = " ".join(str(fields.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
        if full:
            return full
        return next((str(fields[k]) for k in ID_FIELDS if fields.get(k) not in (None, "")), None)

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        label = self.label(fields)
        if not label:
            return None, (
                f"no {self.settings['label_field']}"
                if self.settings.get("label_field")
                else "nothing to name the record by (name, valid email, first/last name or an id)"
            )
        extras = [f"{k}: {fields[k]}" for k in self.shown if fields.get(k) not in (None, "")]
        line = f"• *{escape(label)}*" + (f" — {escape(', '.join(extras))}" if extras else "")
        return {"line": _short(line, MAX_LINE_CHARS)}, None

    def _lines(self, records: Sequence[Record]) -> tuple[list[tuple[Record, str]], list[RecordResult]]:
        kept, rejected = self._normalised(records)
        return [(record, out["line"]) for record, out in kept], rejected

    # -- requests --------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def message(self, operation: str, lines: Sequence[str], context: SyncContext) -> dict[str, Any]:
        """One digest: a header, the lines packed into sections, and where it came from."""
        verb = VERBS.get(operation, operation)
        title = str(self.settings.get("title") or context.sync_name)
        heading = _short(f"{title}: {len(lines)} {verb}", MAX_HEADER_CHARS)
        sections: list[str] = []
        for line in lines:
            if sections and len(sections[-1]) + 1 + len(line) <= MAX_SECTION_CHARS:
                sections[-1] += "\n" + line
            else:
                sections.append(line)
        blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": heading}}]
        blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections]
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"sync `{escape(context.sync_name)}` · {context.mode}"}
                ],
            }
        )
        text = _short(heading + "\n" + "\n".join(lines), MAX_TEXT_CHARS)
        return {"text": text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        if operation not in VERBS:
            raise ValueError(f"Slack cannot '{operation}'; use {', '.join(VERBS)}")
        self._check_batch_size(records, "the {limit} lines of one digest")
        kept, _ = self._lines(records)
        return "POST", self.url, self._headers(), self.message(operation, [line for _, line in kept], context)

    def send_request(self, request: PlannedRequest, *, timeout: float = 30.0) -> requests.Response:
        """As the base, but a transport error names no URL: the URL is the secret."""
        method, url, headers, body = request
        try:
            return self.session.request(method, url, headers=headers, json=body, timeout=timeout)
        except requests.RequestException as exc:
            raise TransientError(f"{type(exc).__name__} while posting to the Slack webhook") from None

    def _raise_for_error(self, response: requests.Response, action: str) -> None:
        if response.ok:
            return
        status = response.status_code
        error = _short((response.text or "").strip(), 100) or f"HTTP {status}"
        message = f"Slack {action}: HTTP {status} {error}"
        if status == 429:
            raise TransientError(message, retry_after=retry_after_seconds(response), http_status=429)
        if status >= 500:
            raise TransientError(message, http_status=status)
        if status in TERMINAL:
            raise TerminalError(f"{message} ({TERMINAL[status]})", http_status=status)
        raise BatchRejected(message, http_status=status)

    # -- the contract ----------------------------------------------------------------------------

    def check(self) -> CheckResult:
        """Incoming webhooks have no read call; an empty payload is refused with ``no_text`` only when
        the webhook exists, so it proves the URL without posting anything to the channel."""
        try:
            response = self.send_request(("POST", self.url, self._headers(), {}))
        except TransientError as exc:
            return CheckResult(False, str(exc))
        if response.status_code == 400 and response.text.strip() in ("no_text", "invalid_payload"):
            return CheckResult(True, "webhook exists (an empty test payload was refused, nothing was posted)")
        if response.ok:
            return CheckResult(True, "webhook accepted a payload")
        try:
            self._raise_for_error(response, "check")
        except (TerminalError, TransientError, BatchRejected) as exc:
            return CheckResult(False, str(exc))
        return CheckResult(False, f"Slack check: HTTP {response.status_code}")

    def post_text(self, text: str) -> None:
        """Post a plain alert (run failures, volume changes) through the same webhook."""
        if not text.strip():
            raise ValueError("an alert needs text")
        response = self.send_request(
            ("POST", self.url, self._headers(), {"text": _short(text, MAX_TEXT_CHARS)})
        )
        self._raise_for_error(response, "alert")

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        kept, results = self._lines(records)
        if not kept:
            return results
        response = self.send_request(self.build_request(operation, [r for r, _ in kept], context))
        self._raise_for_error(response, "post digest")
        return results + [RecordResult(r.key, ok=True, http_status=response.status_code) for r, _ in kept]
