"""Alerts after a run: failure, too many rejections, a record count far from the previous run.

Sent to a Slack incoming webhook and/or a plain webhook URL, each read from an environment variable the
sync names. Slack alerts go through the Slack destination (``SlackWebhook.post_text``), so they read
Slack's answers the same way a Slack sync does: a 429 is waited out (a few times, briefly), a revoked
webhook or archived channel is reported in Slack's words, and the URL never appears in a message. An
alert that cannot be delivered is reported on the run, never fails the run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests

from reverse_etl.destinations.base import DestinationError, TransientError
from reverse_etl.sync.config import AlertsConfig

SLACK_ATTEMPTS = 3  # an alert is worth a short wait, not a long one: the run is already over
SLACK_MAX_WAIT = 5.0  # seconds; a longer Retry-After gives up and reports it


def evaluate(config: AlertsConfig, summary: dict[str, Any], previous: dict[str, Any] | None) -> list[str]:
    """The alert messages this run deserves (empty when all is well)."""
    name = summary["sync_name"]
    alerts: list[str] = []
    if config.on_failure and summary["status"] == "failed":
        alerts.append(f"sync {name} failed: {summary.get('error') or 'unknown error'}")
    attempted = summary["delivered"] + summary["rejected"] + summary["failed"]
    bad = summary["rejected"] + summary["failed"]
    if config.rejection_rate is not None and attempted and bad / attempted > config.rejection_rate:
        alerts.append(
            f"sync {name}: {bad} of {attempted} records rejected or failed "
            f"({bad / attempted:.1%} > {config.rejection_rate:.1%})"
        )
    if config.volume_change is not None and previous and previous.get("source_rows") is not None:
        before, now = int(previous["source_rows"]), int(summary.get("source_rows") or 0)
        change = abs(now - before) / before if before else (1.0 if now else 0.0)
        if change > config.volume_change:
            alerts.append(
                f"sync {name}: source has {now} records, {before} on the previous run "
                f"({change:.0%} change > {config.volume_change:.0%})"
            )
    return alerts


class _RedactHookPaths(logging.Filter):
    """Hides hook URL paths in urllib3's DEBUG lines ("POST /services/T0/B0/xyz ..."): for Slack and
    most webhook hosts the path is the secret."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted(secrets, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for s in self.secrets:
                message = message.replace(s, "/***")
            record.msg, record.args = message, ()
        return True


@contextlib.contextmanager
def _hook_urls_hidden_from_logs(*envs: str | None) -> Iterator[None]:
    secrets: list[str] = []
    for env in envs:
        url = os.environ.get(env) if env else None
        if url:
            parts = urlsplit(url)
            secrets += [p for p in (parts.path, parts.query) if len(p) > 1]
            if parts.query:
                secrets.append(f"{parts.path}?{parts.query}")
    logger = logging.getLogger("urllib3.connectionpool")
    redact = _RedactHookPaths(secrets)
    logger.addFilter(redact)
    try:
        yield
    finally:
        logger.removeFilter(redact)


def send(
    config: AlertsConfig, summary: dict[str, Any], alerts: list[str], *, timeout: float = 10.0
) -> list[str]:
    """Post the alerts; returns problems met while sending (never raises)."""
    if not alerts:
        return []
    with _hook_urls_hidden_from_logs(config.slack_webhook_env, config.webhook_url_env):
        return _send(config, summary, alerts, timeout=timeout)


def _send(config: AlertsConfig, summary: dict[str, Any], alerts: list[str], *, timeout: float) -> list[str]:
    problems: list[str] = []
    text = "\n".join(alerts)
    if config.slack_webhook_env:
        problem = post_slack(config.slack_webhook_env, text)
        if problem:
            problems.append(problem)
    if config.webhook_url_env:
        payload = {"type": "cdp.sync.alert", "sync": summary["sync_name"], "alerts": alerts, "run": summary}
        url = os.environ.get(config.webhook_url_env)
        if not url:
            problems.append(
                f"webhook alert not sent: environment variable {config.webhook_url_env} is not set"
            )
        else:
            try:
                resp = requests.post(url, json=payload, timeout=timeout)
                if resp.status_code >= 300:
                    problems.append(f"webhook alert not sent: HTTP {resp.status_code}")
            except requests.RequestException as exc:
                problems.append(f"webhook alert not sent: {type(exc).__name__}")
    return problems


def post_slack(env: str, text: str, *, sleep: Any = time.sleep) -> str | None:
    """Post ``text`` to the Slack webhook whose URL is in ``env``; the problem, or None when posted."""
    from reverse_etl.destinations.slack import SlackWebhook

    if not os.environ.get(env):
        return f"slack alert not sent: environment variable {env} is not set"
    try:
        slack = SlackWebhook({"webhook_url": env}, source=f"alerts: slack_webhook_env {env}")
    except DestinationError as exc:
        return f"slack alert not sent: {exc}"
    try:
        for attempt in range(1, SLACK_ATTEMPTS + 1):
            try:
                slack.post_text(text)
                return None
            except TransientError as exc:
                wait = exc.retry_after if exc.retry_after is not None else float(attempt)
                if attempt == SLACK_ATTEMPTS or wait > SLACK_MAX_WAIT:
                    return f"slack alert not sent after {attempt} attempt(s): {exc}"
                sleep(wait)
            except DestinationError as exc:  # revoked webhook, archived channel, refused payload
                return f"slack alert not sent: {exc}"
    finally:
        slack.close()
    return None
