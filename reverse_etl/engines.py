"""Run the dbt project on engines other than the embedded DuckDB: PostgreSQL and Spark.

The generator (``cdp generate``) and the test helpers write raw tables into a DuckDB file; this module
copies those tables into a PostgreSQL database or a Spark catalog so the same project builds there, and
starts a throwaway PostgreSQL cluster (initdb + pg_ctl on 127.0.0.1, data in a temporary directory) for
tests and local trials. The profiles that point dbt at these engines live in
``reverse_etl/profiles/engines/profiles.yml`` and read the environment variables named below.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from reverse_etl.datagen.schema import TABLES

if TYPE_CHECKING:  # pragma: no cover - optional dependencies
    from pyspark.sql import SparkSession

ENGINE_PROFILES_DIR = Path(__file__).resolve().parent / "profiles" / "engines"

# The raw tables the project reads (ground truth is for measuring, no model reads it).
RAW_TABLES: tuple[str, ...] = tuple(name for name in TABLES if not name.startswith("ground_truth."))

# The OS user a throwaway cluster runs as when this process is root (initdb refuses root).
PG_OS_USER = "postgres"


class EngineError(Exception):
    """An engine problem the user can fix; the message says how."""


# -- reading the raw tables out of DuckDB ------------------------------------------------------------


@dataclass(frozen=True)
class RawTable:
    """One raw table of the DuckDB file: ``schema.name`` and its columns as (name, DuckDB type)."""

    schema: str
    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def raw_tables(database: str | os.PathLike[str], tables: Sequence[str] = RAW_TABLES) -> list[RawTable]:
    """The raw tables present in the DuckDB file, with their column types from its catalog."""
    path = Path(database)
    if not path.exists():
        raise EngineError(f"raw data file {path} does not exist: run `cdp generate` first.")
    con = duckdb.connect(str(path), read_only=True)
    try:
        found: list[RawTable] = []
        for qualified in tables:
            schema, name = qualified.split(".", 1)
            rows = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
            if rows:
                found.append(RawTable(schema, name, tuple((str(c), str(t)) for c, t in rows)))
    finally:
        con.close()
    if not found:
        raise EngineError(
            f"no raw tables ({', '.join(tables[:3])}, ...) in {path}: run `cdp generate --customers N` first."
        )
    return found


_PG_TYPES = {
    "VARCHAR": "text",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "DATE": "date",
    "BOOLEAN": "boolean",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "DOUBLE": "double precision",
    "FLOAT": "real",
}


def postgres_type(table: RawTable, column: str, duckdb_type: str) -> str:
    """The PostgreSQL type for a DuckDB column type; a clear error for one this loader does not map."""
    upper = duckdb_type.upper()
    if upper in _PG_TYPES:
        return _PG_TYPES[upper]
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", upper)
    if decimal:
        return f"numeric({decimal.group(1)}, {decimal.group(2)})"
    raise EngineError(
        f"{table.qualified}.{column}: DuckDB type {duckdb_type} has no PostgreSQL mapping in "
        "reverse_etl/engines.py; cast the column to varchar, timestamp, decimal or bigint in the raw data "
        "or add the type to _PG_TYPES."
    )


# -- PostgreSQL ---------------------------------------------------------------------------------------


@dataclass
class PostgresTarget:
    """Where a PostgreSQL database is; ``env()`` gives the variables the engines profile reads."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "cdp"
    database: str = "cdp"
    password: str = ""

    def env(self) -> dict[str, str]:
        return {
            "CDP_PG_HOST": self.host,
            "CDP_PG_PORT": str(self.port),
            "CDP_PG_USER": self.user,
            "CDP_PG_DATABASE": self.database,
            "CDP_PG_PASSWORD": self.password,
        }

    def connect(self, database: str | None = None) -> Any:
        """A psycopg2 connection (dbt-postgres brings psycopg2)."""
        try:
            import psycopg2
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EngineError("PostgreSQL needs psycopg2: pip install -e '.[postgres]'") from exc
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=database or self.database,
            connect_timeout=10,
        )


def load_postgres(
    database: str | os.PathLike[str], target: PostgresTarget, tables: Sequence[str] = RAW_TABLES
) -> dict[str, int]:
    """Copy the raw tables of a DuckDB file into PostgreSQL (schemas created, tables replaced).

    Each table goes through DuckDB's CSV writer and PostgreSQL's COPY: no row-by-row inserts, and empty
    strings stay distinct from nulls (DuckDB quotes them, COPY reads an unquoted empty field as null).
    Returns rows loaded per table.
    """
    found = raw_tables(database, tables)
    loaded: dict[str, int] = {}
    src = duckdb.connect(str(database), read_only=True)
    pg = target.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="cdp-pg-load-") as scratch:
            for table in found:
                csv_path = Path(scratch) / f"{table.schema}__{table.name}.csv"
                names = ", ".join(f'"{c}"' for c, _ in table.columns)
                src.execute(
                    f'copy (select {names} from "{table.schema}"."{table.name}") to \'{csv_path}\' '
                    "(format csv, header false, timestampformat '%Y-%m-%d %H:%M:%S.%f')"
                )
                columns = ", ".join(f'"{c}" {postgres_type(table, c, t)}' for c, t in table.columns)
                with pg.cursor() as cur:
                    cur.execute(f'create schema if not exists "{table.schema}"')
                    cur.execute(f'drop table if exists "{table.schema}"."{table.name}" cascade')
                    cur.execute(f'create table "{table.schema}"."{table.name}" ({columns})')
                    with csv_path.open("r", encoding="utf-8") as handle:
                        cur.copy_expert(
                            f'copy "{table.schema}"."{table.name}" ({names}) from stdin with (format csv)',
                            handle,
                        )
                    cur.execute(f'analyze "{table.schema}"."{table.name}"')
                    cur.execute(f'select count(*) from "{table.schema}"."{table.name}"')
                    loaded[table.qualified] = int(cur.fetchone()[0])
                pg.commit()
    finally:
        pg.close()
        src.close()
    return loaded


def postgres_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl: ``CDP_PG_BIN``, PATH, or Debian's newest version."""
    if os.environ.get("CDP_PG_BIN"):
        return Path(os.environ["CDP_PG_BIN"])
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(re.sub(r"\D", "", Path(p).parent.parent.name) or 0),
    )
    if versions:
        return Path(versions[-1]).parent
    raise EngineError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql, "
        "or set CDP_PG_BIN to the directory that holds them."
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    """A throwaway PostgreSQL cluster: initdb in a temporary directory, listening on 127.0.0.1 only,
    trust authentication, durability switched off (it is thrown away). Use it as a context manager.

    When this process is root the server runs as ``os_user`` (initdb refuses root); the directory is
    made under /tmp and handed to that user, since pytest's own temporary directories are private.
    """

    port: int = 0
    user: str = "cdp"
    database: str = "cdp"
    os_user: str = PG_OS_USER
    settings: Mapping[str, str] = field(
        default_factory=lambda: {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "256MB",
            "work_mem": "64MB",
            "max_connections": "20",
        }
    )
    root: Path | None = None
    _started: bool = False

    @property
    def target(self) -> PostgresTarget:
        return PostgresTarget(host="127.0.0.1", port=self.port, user=self.user, database=self.database)

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        try:
            pwd.getpwnam(self.os_user)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", self.os_user],
                check=True,
                capture_output=True,
            )
        return ["runuser", "-u", self.os_user, "--", *argv]

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self._as_server_user(argv), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise EngineError(
                f"{' '.join(argv[:2])} failed ({result.returncode}):\n{result.stderr or result.stdout}"
            )
        return result

    def start(self) -> PostgresTarget:
        """initdb, start the server, create the database; returns where it listens."""
        bin_dir = postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="cdp-pg-"))
        if os.geteuid() == 0:
            self._as_server_user(["true"])  # creates the OS user when missing
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        data = self.root / "data"
        self.port = self.port or free_port()
        self._run([str(bin_dir / "initdb"), "-D", str(data), "-U", self.user, "-A", "trust", "-E", "UTF8",
                   "--no-sync", "--locale=C"])  # fmt: skip
        options = " ".join(
            [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={self.root}"]
            + [f"-c {key}={value}" for key, value in self.settings.items()]
        )
        self._run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"), "-o", options,
                   "-w", "-t", "60", "start"])  # fmt: skip
        self._started = True
        atexit.register(self.stop)  # an interrupted run still stops the server
        admin = PostgresTarget(port=self.port, user=self.user, database="postgres").connect()
        try:
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute(f'create database "{self.database}"')
        finally:
            admin.close()
        return self.target

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        if self.root is None:
            return
        if self._started:
            bin_dir = postgres_bin_dir()
            subprocess.run(
                self._as_server_user(
                    [str(bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"]
                ),
                capture_output=True,
                timeout=120,
            )
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def log(self) -> str:
        """The server log, for error messages."""
        path = (self.root or Path("/nonexistent")) / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> PostgresCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def postgres_available() -> str | None:
    """None when a throwaway cluster can run here, else why not (for a test's skip reason)."""
    try:
        import dbt.adapters.postgres  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError:
        return "dbt-postgres is not installed: pip install -e '.[postgres]'"
    try:
        postgres_bin_dir()
    except EngineError as exc:
        return str(exc)
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser: cannot start PostgreSQL as a non-root user"
    return None


# -- Spark --------------------------------------------------------------------------------------------


def spark_conf(
    warehouse_dir: str | os.PathLike[str], driver_memory: str = "2g", catalog: str = "hive"
) -> dict[str, str]:
    """Settings for a local Spark session: the same ones the engines profile passes to dbt-spark (the
    session is made once per process, so whoever starts it first must use these). ``catalog`` is
    ``hive`` (a Derby metastore under ``warehouse_dir``: tables outlive the process, so a later ``dbt``
    run sees them) or ``in-memory`` (faster to start; tables live as long as the process)."""
    if catalog not in ("hive", "in-memory"):
        raise EngineError(f"spark catalog {catalog!r}: use hive or in-memory")
    root = Path(warehouse_dir).resolve()
    return {
        "spark.master": "local[2]",
        "spark.app.name": "cdp",
        "spark.driver.memory": driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.catalogImplementation": catalog,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={root} -Duser.timezone=UTC",
        "spark.sql.ansi.enabled": "false",
    }


def spark_session(
    warehouse_dir: str | os.PathLike[str], driver_memory: str = "2g", catalog: str = "hive"
) -> SparkSession:
    """The process's Spark session, with its tables (and Hive metastore) under ``warehouse_dir``."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EngineError("Spark needs pyspark: pip install -e '.[spark]'") from exc
    Path(warehouse_dir).mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in spark_conf(warehouse_dir, driver_memory, catalog).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def load_spark(
    database: str | os.PathLike[str], spark: SparkSession, tables: Sequence[str] = RAW_TABLES
) -> dict[str, int]:
    """Copy the raw tables of a DuckDB file into Spark tables (Parquet) of the same schema and name.

    DuckDB writes each table to Parquet; Spark reads it and saves it as a table. DuckDB timestamps have
    no zone, which Spark reads as TIMESTAMP_NTZ: they become Spark's TIMESTAMP (the project's type) in
    the session's zone, which spark_conf() sets to UTC, so the wall-clock values are unchanged.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType, TimestampType

    found = raw_tables(database, tables)
    loaded: dict[str, int] = {}
    src = duckdb.connect(str(database), read_only=True)
    try:
        with tempfile.TemporaryDirectory(prefix="cdp-spark-load-") as scratch:
            for table in found:
                path = Path(scratch) / f"{table.schema}__{table.name}.parquet"
                src.execute(f'copy "{table.schema}"."{table.name}" to \'{path}\' (format parquet)')
                frame = spark.read.parquet(str(path))
                frame = frame.select(
                    *[
                        F.col(f.name).cast(TimestampType()).alias(f.name)
                        if isinstance(f.dataType, TimestampNTZType)
                        else F.col(f.name)
                        for f in frame.schema.fields
                    ]
                )
                spark.sql(f"create database if not exists `{table.schema}`")
                spark.sql(f"drop table if exists `{table.schema}`.`{table.name}`")
                frame.write.format("parquet").mode("overwrite").saveAsTable(
                    f"`{table.schema}`.`{table.name}`"
                )
                loaded[table.qualified] = int(
                    src.execute(f'select count(*) from "{table.schema}"."{table.name}"').fetchone()[0]
                )
    finally:
        src.close()
    return loaded


def spark_available() -> str | None:
    """None when a local Spark session can run here, else why not (for a test's skip reason)."""
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError:
        return "dbt-spark[session] and pyspark are not installed: pip install -e '.[spark]'"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "Spark needs a Java runtime (17 or newer): apt-get install -y openjdk-17-jre-headless"
    return None


# -- reading results back -----------------------------------------------------------------------------


def query_rows(
    engine: str, sql: str, *, target: PostgresTarget | None = None, spark: Any = None
) -> list[tuple]:
    """Rows of a query on an engine, as tuples (for comparing results across engines)."""
    if engine == "postgres":
        if target is None:
            raise EngineError("query_rows('postgres', ...) needs target=PostgresTarget(...)")
        con = target.connect()
        try:
            with con.cursor() as cur:
                cur.execute(sql)
                return [tuple(row) for row in cur.fetchall()]
        finally:
            con.close()
    if engine == "spark":
        if spark is None:
            raise EngineError("query_rows('spark', ...) needs spark=<SparkSession>")
        return [tuple(row) for row in spark.sql(sql).collect()]
    raise EngineError(f"unknown engine {engine!r}: use postgres or spark")


__all__ = [
    "ENGINE_PROFILES_DIR",
    "RAW_TABLES",
    "EngineError",
    "PostgresCluster",
    "PostgresTarget",
    "RawTable",
    "free_port",
    "load_postgres",
    "load_spark",
    "postgres_available",
    "query_rows",
    "raw_tables",
    "spark_available",
    "spark_conf",
    "spark_session",
]
