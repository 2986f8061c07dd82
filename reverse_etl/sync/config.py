"""Syncs as code: one YAML file per sync, parsed into typed config and validated once, at load.

Every error names the file, the key and the fix, so a typo in ``syncs/x.yml`` is caught by
``cdp sync list`` (or CI) before a run sends anything.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reverse_etl.destinations import REGISTRY, destination_class
from reverse_etl.destinations.base import MODES, ConfigError

# Modes that delete from the destination what left the source (only what this sync added).
REMOVAL_MODES = ("mirror", "audience")
# Modes that only ever send records the destination has not seen from this sync.
NEW_ONLY_MODES = ("insert", "append")

# mode -> (operation for new/changed records, operation for removed records or None)
MODE_OPERATIONS: dict[str, tuple[str, str | None]] = {
    "upsert": ("upsert", None),
    "update": ("update", None),
    "insert": ("insert", None),
    "append": ("append", None),
    "mirror": ("upsert", "remove"),
    "audience": ("add", "remove"),
}

TOP_LEVEL_KEYS = (
    "name",
    "description",
    "owner",
    "source",
    "destination",
    "mode",
    "primary_key",
    "mapping",
    "consent",
    "schedule",
    "alerts",
    "batch_size",
    "retry",
)
SOURCE_KINDS = ("model", "segment", "table")
MAPPING_KINDS = ("column", "constant", "template")
ALERT_KEYS = ("on_failure", "rejection_rate", "volume_change", "slack_webhook_env", "webhook_url_env")
RETRY_KEYS = ("max_attempts", "initial_delay", "max_delay")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


class SyncConfigError(ConfigError):
    """A sync definition is wrong; the message names the file, the key and the fix."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def did_you_mean(value: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class SourceConfig:
    kind: str  # model | segment | table
    name: str

    def describe(self) -> str:
        return f"{self.kind}: {self.name}"


@dataclass(frozen=True)
class FieldMapping:
    """One destination field and where its value comes from."""

    field: str
    kind: str  # column | constant | template
    value: Any
    columns: tuple[str, ...]  # source columns it reads

    def signature(self) -> str:
        return f"{self.field}={self.kind}:{self.value!r}"


@dataclass(frozen=True)
class AlertsConfig:
    on_failure: bool = True
    rejection_rate: float | None = None
    volume_change: float | None = None
    slack_webhook_env: str | None = None
    webhook_url_env: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.slack_webhook_env or self.webhook_url_env)


@dataclass(frozen=True)
class RetryConfig:
    """Transient failures: attempts per batch within a run, with exponential backoff and jitter."""

    max_attempts: int = 6
    initial_delay: float = 0.5
    max_delay: float = 60.0


@dataclass(frozen=True)
class DestinationConfig:
    type: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncConfig:
    name: str
    path: Path
    source: SourceConfig
    destination: DestinationConfig
    mode: str
    primary_key: str
    mapping: tuple[FieldMapping, ...]
    consent: tuple[str, ...] = ()
    schedule: str | None = None
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    batch_size: int | None = None
    retry: RetryConfig = field(default_factory=RetryConfig)
    description: str = ""
    owner: str | dict[str, str] | None = None  # who to ask about this sync (dbt exposure owner)

    @property
    def operations(self) -> tuple[str, str | None]:
        return MODE_OPERATIONS[self.mode]

    def source_columns(self) -> list[str]:
        """Columns the sync reads: the primary key, mapped columns, consent columns (in that order)."""
        cols = [self.primary_key]
        for m in self.mapping:
            cols.extend(c for c in m.columns if c not in cols)
        cols.extend(c for c in self.consent_columns() if c not in cols)
        return cols

    def hashed_columns(self) -> list[str]:
        """Change detection looks at mapped columns only (not consent, not unmapped columns)."""
        cols: list[str] = []
        for m in self.mapping:
            cols.extend(c for c in m.columns if c not in cols)
        return cols

    def consent_columns(self) -> list[str]:
        return [f"consent_{p}" for p in self.consent]

    def mapping_signature(self) -> str:
        """Part of every row hash: changing the mapping (a constant, a template) resends every record."""
        return "|".join(m.signature() for m in self.mapping)

    def effective_batch_size(self, max_batch_size: int) -> int:
        return min(self.batch_size or max_batch_size, max_batch_size)


# -- parsing ---------------------------------------------------------------------------------


def _where(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _fail(where: str, key: str, message: str) -> SyncConfigError:
    return SyncConfigError(f"{where}: {key}: {message}")


def _check_keys(where: str, prefix: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            raise _fail(
                where,
                f"{prefix}{key}",
                f"unknown key{did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})",
            )


def _number(
    where: str, key: str, value: Any, *, lo: float, hi: float | None = None, integer: bool = False
) -> Any:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or value < lo or (hi is not None and value > hi):
        kind = "an integer" if integer else "a number"
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise _fail(where, key, f"{value!r} is not valid: use {kind} {rng}")
    return value


def _parse_source(where: str, raw: Any) -> SourceConfig:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise _fail(
            where,
            "source",
            "give exactly one of `model: <dbt model>`, `segment: <segment name>` or `table: schema.name`",
        )
    ((kind, name),) = raw.items()
    if kind not in SOURCE_KINDS:
        raise _fail(
            where,
            f"source.{kind}",
            f"unknown source kind{did_you_mean(kind, SOURCE_KINDS)}; use model, segment or table",
        )
    if not isinstance(name, str) or not name.strip():
        raise _fail(where, f"source.{kind}", "needs a name")
    if kind == "table" and not re.match(r"^[A-Za-z_][\w]*\.[A-Za-z_][\w]*$", name):
        raise _fail(where, "source.table", f"'{name}' is not schema.name (e.g. `table: marts.profiles`)")
    if kind == "model" and not _IDENT.match(name):
        raise _fail(where, "source.model", f"'{name}' is not a dbt model name")
    return SourceConfig(kind, name.strip())


def _template_columns(where: str, key: str, template: str) -> tuple[str, ...]:
    cols: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise _fail(
            where, key, f"template {template!r} is malformed ({exc}); write columns as {{column}}"
        ) from None
    for _literal, name, spec, conv in parsed:
        if name is None:
            continue
        if not _IDENT.match(name) or spec or conv:
            raise _fail(
                where, key, f"template placeholder {{{name}}} must be a plain column name like {{first_name}}"
            )
        if name not in cols:
            cols.append(name)
    if not cols:
        raise _fail(
            where,
            key,
            f"template {template!r} has no {{column}} placeholder; use `constant:` for fixed values",
        )
    return tuple(cols)


def _parse_mapping(where: str, raw: Any) -> tuple[FieldMapping, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise _fail(
            where,
            "mapping",
            "map destination fields to source columns, e.g. `mapping: {email: email, name: {template: '{first_name} {last_name}'}}`",
        )
    out: list[FieldMapping] = []
    for dest, spec in raw.items():
        key = f"mapping.{dest}"
        if not isinstance(dest, str) or not dest:
            raise _fail(where, key, "destination field names must be non-empty strings")
        if isinstance(spec, str):
            spec = {"column": spec}
        if not isinstance(spec, Mapping) or len(spec) != 1:
            raise _fail(
                where, key, "give a column name, or exactly one of `column:`, `constant:`, `template:`"
            )
        ((kind, value),) = spec.items()
        if kind not in MAPPING_KINDS:
            raise _fail(
                where,
                f"{key}.{kind}",
                f"unknown mapping kind{did_you_mean(kind, MAPPING_KINDS)}; use column, constant or template",
            )
        if kind == "column":
            if not isinstance(value, str) or not _IDENT.match(value):
                raise _fail(where, key, f"column {value!r} is not a column name")
            out.append(FieldMapping(dest, "column", value, (value,)))
        elif kind == "constant":
            if isinstance(value, (Mapping, list)):
                raise _fail(where, key, "constants must be a string, number, boolean or null")
            out.append(FieldMapping(dest, "constant", value, ()))
        else:
            if not isinstance(value, str):
                raise _fail(where, key, "a template is a string such as '{first_name} {last_name}'")
            out.append(FieldMapping(dest, "template", value, _template_columns(where, key, value)))
    return tuple(out)


def _parse_alerts(where: str, raw: Any) -> AlertsConfig:
    if raw is None:
        return AlertsConfig()
    if not isinstance(raw, Mapping):
        raise _fail(
            where,
            "alerts",
            "must be a mapping, e.g. `alerts: {on_failure: true, slack_webhook_env: SLACK_WEBHOOK_URL}`",
        )
    _check_keys(where, "alerts.", raw, ALERT_KEYS)
    on_failure = raw.get("on_failure", True)
    if not isinstance(on_failure, bool):
        raise _fail(where, "alerts.on_failure", "use true or false")
    rate = raw.get("rejection_rate")
    if rate is not None:
        _number(where, "alerts.rejection_rate", rate, lo=0, hi=1)
    change = raw.get("volume_change")
    if change is not None:
        _number(where, "alerts.volume_change", change, lo=0)
    envs: dict[str, str | None] = {}
    for key in ("slack_webhook_env", "webhook_url_env"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not _ENV_NAME.match(value)):
            raise _fail(
                where,
                f"alerts.{key}",
                "name the environment variable that holds the URL (e.g. SLACK_WEBHOOK_URL), never the URL itself",
            )
        envs[key] = value
    return AlertsConfig(on_failure, rate, change, envs["slack_webhook_env"], envs["webhook_url_env"])


def _parse_retry(where: str, raw: Any) -> RetryConfig:
    if raw is None:
        return RetryConfig()
    if not isinstance(raw, Mapping):
        raise _fail(where, "retry", "must be a mapping, e.g. `retry: {max_attempts: 6, initial_delay: 0.5}`")
    _check_keys(where, "retry.", raw, RETRY_KEYS)
    d = RetryConfig()
    attempts = _number(
        where, "retry.max_attempts", raw.get("max_attempts", d.max_attempts), lo=1, integer=True
    )
    initial = _number(where, "retry.initial_delay", raw.get("initial_delay", d.initial_delay), lo=0)
    maximum = _number(where, "retry.max_delay", raw.get("max_delay", d.max_delay), lo=0)
    return RetryConfig(attempts, float(initial), float(maximum))


def _parse_destination(where: str, raw: Any) -> DestinationConfig:
    if not isinstance(raw, Mapping) or "type" not in raw:
        raise _fail(
            where, "destination", f"needs `type:` (one of {', '.join(sorted(REGISTRY))}) and its settings"
        )
    dtype = raw["type"]
    if dtype not in REGISTRY:
        raise _fail(
            where,
            "destination.type",
            f"{dtype!r} is not a destination{did_you_mean(str(dtype), sorted(REGISTRY))} (known: {', '.join(sorted(REGISTRY))})",
        )
    settings = {k: v for k, v in raw.items() if k != "type"}
    cls = destination_class(dtype, source=where)
    known = {s.name: s for s in cls.settings_spec}
    for key, value in settings.items():
        if key not in known:
            raise _fail(
                where,
                f"destination.{key}",
                f"'{dtype}' has no such setting{did_you_mean(key, sorted(known))} (settings: {', '.join(sorted(known)) or 'none'})",
            )
        if (
            known[key].secret
            and value is not None
            and not (isinstance(value, str) and _ENV_NAME.match(value))
        ):
            raise _fail(
                where,
                f"destination.{key}",
                "secrets are named by environment variable, never written here: "
                f"export the value as e.g. {key.upper()} and write `{key}: {key.upper()}`",
            )
    for spec in cls.settings_spec:
        if spec.required and settings.get(spec.name, spec.default) is None:
            raise _fail(where, f"destination.{spec.name}", f"'{dtype}' needs this setting ({spec.help})")
    return DestinationConfig(dtype, settings)


def parse_sync(data: Any, path: Path) -> SyncConfig:
    """Validate one sync definition (already parsed YAML) from ``path``."""
    where = _where(path)
    if not isinstance(data, Mapping):
        raise SyncConfigError(
            f"{where}: a sync file is a YAML mapping with source, destination, mode, primary_key, mapping"
        )
    _check_keys(where, "", data, TOP_LEVEL_KEYS)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(
            where, "name", f"{name!r} is not a valid sync name: use lowercase letters, digits, '_' and '-'"
        )
    for required in ("source", "destination", "mode", "primary_key", "mapping"):
        if required not in data:
            raise _fail(where, required, "is required")
    source = _parse_source(where, data["source"])
    destination = _parse_destination(where, data["destination"])
    mode = data["mode"]
    if mode not in MODES:
        raise _fail(
            where, "mode", f"{mode!r} is not one of {', '.join(MODES)}{did_you_mean(str(mode), MODES)}"
        )
    cls = destination_class(destination.type, source=where)
    if mode not in cls.modes:
        raise _fail(
            where, "mode", f"destination '{destination.type}' supports {', '.join(cls.modes)}, not {mode!r}"
        )
    pk = data["primary_key"]
    if not isinstance(pk, str) or not _IDENT.match(pk):
        raise _fail(
            where, "primary_key", f"{pk!r} is not a column name; give the one column that identifies a record"
        )
    mapping = _parse_mapping(where, data["mapping"])
    consent_raw = data.get("consent") or []
    if isinstance(consent_raw, str):
        consent_raw = [consent_raw]
    if not isinstance(consent_raw, list) or not all(
        isinstance(p, str) and _IDENT.match(p) for p in consent_raw
    ):
        raise _fail(
            where,
            "consent",
            "a list of purposes, e.g. `consent: [email_marketing]` (rows need consent_<purpose> = true)",
        )
    schedule = data.get("schedule")
    if schedule is not None:
        from croniter import croniter

        if not isinstance(schedule, str) or not croniter.is_valid(schedule):
            raise _fail(
                where, "schedule", f"{schedule!r} is not a cron expression; e.g. '0 * * * *' for hourly"
            )
    batch_size = data.get("batch_size")
    max_batch = cls.limits.max_batch_size
    if batch_size is not None:
        _number(where, "batch_size", batch_size, lo=1, integer=True)
        if batch_size > max_batch:
            raise _fail(
                where,
                "batch_size",
                f"{batch_size} is over {destination.type}'s limit of {max_batch} records per request",
            )
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise _fail(where, "description", "must be a string")
    owner = data.get("owner")
    if owner is not None and not isinstance(owner, str | dict):
        raise _fail(where, "owner", "must be a name, 'Name <email>', or a mapping with name and email")
    return SyncConfig(
        name=name,
        path=path,
        source=source,
        destination=destination,
        mode=mode,
        primary_key=pk,
        mapping=mapping,
        consent=tuple(consent_raw),
        schedule=schedule,
        alerts=_parse_alerts(where, data.get("alerts")),
        batch_size=batch_size,
        retry=_parse_retry(where, data.get("retry")),
        description=description,
        owner=owner,
    )


def load_sync_file(path: Path) -> SyncConfig:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SyncConfigError(f"{_where(path)}: not valid YAML: {exc}") from None
    return parse_sync(data, path)


def sync_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def load_syncs(directory: Path) -> tuple[dict[str, SyncConfig], list[SyncConfigError]]:
    """Every valid sync in ``directory`` by name, and the errors of the invalid ones."""
    syncs: dict[str, SyncConfig] = {}
    errors: list[SyncConfigError] = []
    for path in sync_files(directory):
        try:
            config = load_sync_file(path)
        except ConfigError as exc:
            errors.append(SyncConfigError(str(exc), path))
            continue
        if config.name in syncs:
            errors.append(
                SyncConfigError(
                    f"{_where(path)}: name: '{config.name}' is also used by {_where(syncs[config.name].path)}; "
                    "names must be unique",
                    path,
                )
            )
            continue
        syncs[config.name] = config
    return syncs, errors


def load_sync(directory: Path, name: str) -> SyncConfig:
    """One sync by name, with a clear error when it does not exist or is invalid."""
    syncs, errors = load_syncs(directory)
    if name in syncs:
        return syncs[name]
    for err in errors:
        if err.path is not None and err.path.stem == name:
            raise err
    known = sorted(syncs)
    raise SyncConfigError(
        f"no sync named '{name}' in {directory}{did_you_mean(name, known)} "
        f"(known: {', '.join(known) or 'none'}; one YAML file per sync)"
    )
