"""The contract between the sync engine and a destination.

The engine diffs, batches, retries, splits rejected batches, keeps state and accounts for every record;
a destination only knows its vendor's API: it normalises and hashes identifiers, sends one batch, and
reports a result per record. Adding a destination is one module, one registry line, one emulator.

Failure kinds are kept apart:

* :class:`TransientError` (throttling, 5xx, timeouts): the engine retries the same batch with backoff,
  waiting at least ``retry_after`` seconds when the vendor said so.
* :class:`BatchRejected`: the vendor refused the whole batch because of its content (e.g. one bad
  record fails the request). The engine splits the batch to isolate the bad records.
* :class:`TerminalError` (bad credentials, missing audience, misconfiguration): the run stops, nothing
  is marked as delivered, the error is reported.
* Per-record rejections come back as :class:`RecordResult` with ``ok=False``; the rest of the batch
  counts as delivered.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import requests

# Operations a batch can carry. A sync mode maps to these (see reverse_etl/sync):
#   upsert -> upsert; update -> update; insert -> insert; mirror -> upsert + remove;
#   audience -> add + remove; append -> append.
OPERATIONS = ("upsert", "update", "insert", "remove", "add", "append")
MODES = ("upsert", "update", "insert", "mirror", "audience", "append")


class DestinationError(Exception):
    """Base class of the failures a destination reports to the engine."""


class TransientError(DestinationError):
    """Retry later: throttled, vendor 5xx, timeout, connection reset."""

    def __init__(self, message: str, *, retry_after: float | None = None, http_status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.http_status = http_status


class BatchRejected(DestinationError):
    """The whole batch was refused because of its content; split it to find the bad records."""

    def __init__(self, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


class TerminalError(DestinationError):
    """Do not retry: bad credentials, missing permission, misconfigured destination."""

    def __init__(self, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


class ConfigError(DestinationError):
    """Destination settings are wrong; the message names the key and the fix."""


# (method, url, headers, body): body is JSON-serialisable data, raw bytes/str, or None.
PlannedRequest = tuple[str, str, dict[str, str], Any]


@dataclass(frozen=True)
class Record:
    """One record to deliver: its primary key and the mapped, normalised fields."""

    key: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class RecordResult:
    key: str
    ok: bool
    http_status: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


@dataclass(frozen=True)
class Limits:
    """What the vendor documents: records per request, requests per second, parallel requests."""

    max_batch_size: int
    requests_per_second: float | None = None
    max_concurrency: int = 1
    max_payload_bytes: int | None = None


@dataclass(frozen=True)
class SettingSpec:
    """A destination setting: name, whether required, and whether it names an environment variable."""

    name: str
    required: bool = True
    secret: bool = False  # the setting's value is the NAME of an environment variable
    default: Any = None
    help: str = ""


@dataclass
class SyncContext:
    """What a destination may need to know about the sync it serves."""

    sync_name: str
    mode: str
    primary_key: str
    state: dict[str, Any] = field(default_factory=dict)  # destination-owned, persisted by the engine


class Destination(abc.ABC):
    """One vendor API. Subclasses set the class attributes and implement ``check`` and ``send_batch``."""

    name: ClassVar[str]
    title: ClassVar[str]
    modes: ClassVar[tuple[str, ...]]
    limits: ClassVar[Limits]
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = ()
    # Fields the destination reads from each record (documentation and `cdp destination list`).
    identifier_fields: ClassVar[tuple[str, ...]] = ()
    # Consent purposes every record needs (a row is sent only with consent_<purpose> true for each),
    # on top of those the sync names; ad platforms need ads_personalization and ad_user_data.
    consent_purposes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Mapping[str, Any], *, source: str = "<settings>") -> None:
        self.source = source
        self.settings = self._validate(settings)
        self.session = requests.Session()

    # -- configuration ---------------------------------------------------------------------------

    def _validate(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        known = {spec.name for spec in self.settings_spec}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(
                f"{self.source}: destination '{self.name}' has no setting(s) {', '.join(unknown)}; "
                f"known settings: {', '.join(sorted(known)) or 'none'}"
            )
        resolved: dict[str, Any] = {}
        for spec in self.settings_spec:
            value = settings.get(spec.name, spec.default)
            if value is None:
                if spec.required:
                    raise ConfigError(
                        f"{self.source}: destination '{self.name}' needs setting '{spec.name}' ({spec.help})"
                    )
                resolved[spec.name] = None
                continue
            if spec.secret:
                env_name = str(value)
                if env_name not in os.environ:
                    raise ConfigError(
                        f"{self.source}: setting '{spec.name}' names environment variable {env_name}, "
                        f"which is not set: export {env_name}=... (secrets are read from the environment only)"
                    )
                resolved[spec.name] = os.environ[env_name]
            else:
                resolved[spec.name] = value
        return resolved

    def secret_values(self) -> list[str]:
        """Resolved secrets, so logs and run tables can be scrubbed of them."""
        return [
            str(self.settings[s.name]) for s in self.settings_spec if s.secret and self.settings.get(s.name)
        ]

    # -- the vendor API --------------------------------------------------------------------------

    def normalise(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """Normalise and hash identifiers for this vendor. Returns (fields, None) or (None, reason)
        when the record cannot be sent (no valid identifier). Default: pass through."""
        return dict(fields), None

    def match_keys(self, fields: Mapping[str, Any]) -> frozenset[str]:
        """The identifiers the vendor holds a record by, from ``normalise``'s output (e.g. hashed
        emails and phones in an audience). An audience is a set of identifiers, not of primary keys:
        when a record no longer carries one of these, the engine removes the record as last delivered
        before adding it again, so the old identifier does not stay matched. Empty (the default): the
        vendor keys records by the primary key and a change is a plain update."""
        return frozenset()

    def matches_by_identifier(self, mode: str) -> bool:
        """Whether, in this sync mode, the vendor holds records by ``match_keys`` rather than by the
        primary key; a vendor that is an audience in one mode and a CRM in another says so per mode."""
        return type(self).match_keys is not Destination.match_keys

    def _normalised(
        self, records: Sequence[Record]
    ) -> tuple[list[tuple[Record, dict[str, Any]]], list[RecordResult]]:
        """Split a batch into (record, vendor-shaped fields) to send and the records ``normalise``
        refused, already answered as rejected with its reason."""
        kept: list[tuple[Record, dict[str, Any]]] = []
        rejected: list[RecordResult] = []
        for record in records:
            fields, reason = self.normalise(record.fields)
            if fields is None:
                rejected.append(RecordResult(record.key, ok=False, reason=reason))
            else:
                kept.append((record, fields))
        return kept, rejected

    def prepare(self, context: SyncContext) -> None:  # noqa: B027 - optional hook
        """Called once per run before sending: create the audience or list when it does not exist and
        keep its id in ``context.state``."""

    @abc.abstractmethod
    def check(self) -> CheckResult:
        """Probe the credentials with a cheap authenticated call."""

    @abc.abstractmethod
    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        """Send one batch (``len(records) <= limits.max_batch_size``) and return one result per record.
        Raise TransientError, BatchRejected or TerminalError for failures of the whole request."""

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        """The exact HTTP request that carries this batch, built without sending it, so an offline plan
        can show what a sync would do. Destinations that send over HTTP override it."""
        raise NotImplementedError(f"destination '{self.name}' does not describe its requests")

    def plan_requests(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[PlannedRequest]:
        """Every request one batch needs, in order. Most vendors need one; flows with several steps
        (create a job, add to it, run it) override this."""
        return [self.build_request(operation, records, context)]

    def _prepared_id(self, context: SyncContext, key: str, *, planning: bool, missing: str) -> str:
        """The id of the list or audience ``prepare()`` found or created (or the setting naming it); a
        ``{key}`` placeholder when planning offline; else a terminal error saying what is ``missing``."""
        value = context.state.get(key) or self.settings.get(key)
        if value:
            return str(value)
        if planning:
            return "{" + key + "}"
        raise TerminalError(f"{self.source}: {missing}")

    def _check_batch_size(self, records: Sequence[Record], what: str) -> None:
        """Refuse a batch over the vendor's limit before building it; ``what`` names the limit in the
        vendor's terms, with ``{limit}`` for the number (e.g. "Meta's {limit} rows per request")."""
        if len(records) > self.limits.max_batch_size:
            raise ValueError(f"{len(records)} records exceed {what.format(limit=self.limits.max_batch_size)}")

    def send_request(self, request: PlannedRequest, *, timeout: float = 60.0) -> requests.Response:
        """Send a planned request; transport failures (timeouts, resets) become TransientError."""
        method, url, headers, body = request
        try:
            if body is None:
                return self.session.request(method, url, headers=headers, timeout=timeout)
            if isinstance(body, (bytes, str)):
                return self.session.request(method, url, headers=headers, data=body, timeout=timeout)
            return self.session.request(method, url, headers=headers, json=body, timeout=timeout)
        except requests.RequestException as exc:
            raise raise_for_transport(exc) from exc

    def close(self) -> None:
        self.session.close()


def raise_for_transport(exc: requests.RequestException) -> TransientError:
    """Timeouts and connection errors are transient."""
    return TransientError(f"{type(exc).__name__}: {exc}")


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After") or response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
