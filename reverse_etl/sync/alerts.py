"""Alerts after a run: failure, too many rejections, a record count far from the previous run.

Sent to a Slack incoming webhook and/or a plain webhook URL, each read from an environment variable the
sync names. An alert that cannot be delivered is reported on the run, never fails the run.
"""

from __future__ import annotations

import os
from typing import Any

import requests

from reverse_etl.sync.config import AlertsConfig


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


def send(
    config: AlertsConfig, summary: dict[str, Any], alerts: list[str], *, timeout: float = 10.0
) -> list[str]:
    """Post the alerts; returns problems met while sending (never raises)."""
    if not alerts:
        return []
    problems: list[str] = []
    text = "\n".join(alerts)
    targets: list[tuple[str, str, dict[str, Any]]] = []
    if config.slack_webhook_env:
        targets.append((config.slack_webhook_env, "slack", {"text": text}))
    if config.webhook_url_env:
        payload = {"type": "cdp.sync.alert", "sync": summary["sync_name"], "alerts": alerts, "run": summary}
        targets.append((config.webhook_url_env, "webhook", payload))
    for env, kind, payload in targets:
        url = os.environ.get(env)
        if not url:
            problems.append(f"{kind} alert not sent: environment variable {env} is not set")
            continue
        try:
            resp = requests.post(url, json=payload, timeout=timeout)
            if resp.status_code >= 300:
                problems.append(f"{kind} alert not sent: HTTP {resp.status_code}")
        except requests.RequestException as exc:
            problems.append(f"{kind} alert not sent: {type(exc).__name__}")
    return problems
