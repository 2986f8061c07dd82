"""The warehouse interface the reverse-ETL layer reads and keeps its state through.

Callers write SQL in DuckDB's dialect with ``?`` parameters; each engine runs it as its own dialect
(:mod:`reverse_etl.warehouse.dialect`). ``Warehouse(location)`` opens the engine the location names: a
DuckDB file path, or a :class:`WarehouseTarget` read from the dbt profile (PostgreSQL, Spark).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reverse_etl.project import ProjectError

# Relations the dbt project builds, by schema (see dbt_project.yml and macros/generate_schema_name.sql).
MARTS_SCHEMA = "marts"
SEGMENTS_SCHEMA = "segments"
SYNC_SCHEMA = "cdp_sync"

ENGINES = ("duckdb", "postgres", "spark")


class WarehouseError(Exception):
    """A warehouse problem the user can act on."""


@dataclass(frozen=True)
class WarehouseTarget:
    """A warehouse other than a DuckDB file, as a dbt profile's output describes it."""

    type: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    state_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.type not in ENGINES:
            raise WarehouseError(
                f"profile target '{self.name}': type '{self.type}' is not supported by the sync layer "
                f"(supported: {', '.join(ENGINES)})."
            )

    @property
    def description(self) -> str:
        s = self.settings
        if self.type == "postgres":
            return f"postgres://{s.get('user', '')}@{s.get('host', '')}:{s.get('port', 5432)}/{s.get('dbname', '')}"
        if self.type == "spark":
            return f"spark ({s.get('method', 'session')}, target {self.name or 'spark'})"
        return str(s.get("path", ""))

    @property
    def lock_anchor(self) -> Path:
        """A file path whose directory holds this target's sync lock files (one machine's scheduler)."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.description).strip("_")
        root = self.state_dir or Path(os.environ.get("CDP_STATE_DIR", "~/.cache/cdp")).expanduser()
        return root / slug


#: Where a warehouse is: a DuckDB file, or a target of the dbt profile.
Location = Path | WarehouseTarget


def lock_anchor(location: Location) -> Path:
    """The path sync locks for this warehouse sit beside (see reverse_etl/sync/lock.py)."""
    return location.lock_anchor if isinstance(location, WarehouseTarget) else Path(location)


def location_exists(location: Location) -> bool:
    """False only for a DuckDB file not created yet (a server is assumed to be there)."""
    return isinstance(location, WarehouseTarget) or Path(location).exists()


class Warehouse:
    """A connection to the warehouse. ``Warehouse(path)`` is DuckDB; ``Warehouse(target)`` picks the
    engine of a :class:`WarehouseTarget`. Subclasses implement the primitives marked below."""

    dialect = "duckdb"
    #: Where lock files for this warehouse live (``SyncLock`` puts them in its directory).
    path: Path
    read_only: bool

    def __new__(cls, location: Any = None, *args: Any, **kwargs: Any) -> Warehouse:
        if cls is not Warehouse:
            return super().__new__(cls)
        if isinstance(location, WarehouseTarget) and location.type == "postgres":
            from reverse_etl.warehouse.postgres_engine import PostgresWarehouse

            return super().__new__(PostgresWarehouse)
        if isinstance(location, WarehouseTarget) and location.type == "spark":
            from reverse_etl.warehouse.spark_engine import SparkWarehouse

            return super().__new__(SparkWarehouse)
        from reverse_etl.warehouse.duckdb_engine import DuckDBWarehouse

        return super().__new__(DuckDBWarehouse)

    @property
    def location(self) -> str:
        """The warehouse, in words for messages."""
        return str(self.path)

    # -- primitives (per engine) -----------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def stream(
        self, sql: str, params: Sequence[Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows of a query in batches, without holding the whole result in memory."""
        raise NotImplementedError

    def append(
        self, table: str, data: Mapping[str, Sequence[Any]], types: Mapping[str, Any] | None = None
    ) -> None:
        """Bulk insert column-wise data. ``types`` optionally gives pyarrow types for columns whose
        Python values are ambiguous (engines without the type use the nearest one)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        raise NotImplementedError
        yield self  # pragma: no cover

    def columns(self, schema: str, name: str) -> list[str]:
        rows = self.query(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, name],
        )
        return [r["column_name"] for r in rows]

    def relation_exists(self, schema: str, name: str) -> bool:
        return bool(
            self.scalar(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, name],
            )
        )

    def close(self) -> None:
        raise NotImplementedError

    # -- built on the primitives -----------------------------------------------------------------

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.append(table, {c: [r[i] for r in rows] for i, c in enumerate(columns)})

    def require(self, schema: str, name: str, hint: str = "run `cdp build` first") -> str:
        """The quoted relation name, or a clear error when it has not been built."""
        if not self.relation_exists(schema, name):
            raise WarehouseError(f"{schema}.{name} does not exist in {self.location}: {hint}.")
        return f'"{schema}"."{name}"'

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- reading a target from the dbt profile -----------------------------------------------------------


def _render(value: Any) -> Any:
    """A profile value with dbt's ``env_var`` and ``as_number`` rendered (the subset profiles use)."""
    if isinstance(value, dict):
        return {k: _render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v) for v in value]
    if not isinstance(value, str) or "{{" not in value:
        return value
    import jinja2

    def env_var(name: str, default: str | None = None) -> str:
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise WarehouseError(f"the dbt profile needs environment variable {name}: set it.")
        return default

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["as_number"] = lambda v: float(v) if "." in str(v) else int(v)
    env.filters["as_bool"] = lambda v: str(v).lower() in ("true", "1", "yes")
    rendered = env.from_string(value).render(env_var=env_var)
    return int(rendered) if re.fullmatch(r"-?\d+", rendered) and "as_number" in value else rendered


def target_from_profile(
    profiles_dir: Path, target: str | None = None, profile: str = "cdp"
) -> WarehouseTarget | None:
    """The warehouse a dbt target points at; None for a DuckDB target (the caller uses its file path)."""
    import yaml

    path = profiles_dir / "profiles.yml"
    if not path.is_file():
        raise ProjectError(f"{path} does not exist: set CDP_PROFILES_DIR to the folder holding profiles.yml.")
    try:
        profiles = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not valid YAML: {exc}") from exc
    entry = profiles.get(profile)
    if not isinstance(entry, dict) or not isinstance(entry.get("outputs"), dict):
        raise ProjectError(
            f"{path}: profile '{profile}' with `outputs:` is missing (dbt_project.yml names it)."
        )
    name = target or _render(entry.get("target")) or "dev"
    outputs = entry["outputs"]
    if name not in outputs:
        raise ProjectError(
            f"{path}: profile '{profile}' has no target '{name}' (targets: {', '.join(outputs)})."
        )
    settings = _render(dict(outputs[name]))
    kind = str(settings.get("type", ""))
    if kind == "duckdb":
        return None
    return WarehouseTarget(type=kind, settings=settings, name=name)
