"""Runs dbt in-process (dbtRunner) against the project and the embedded warehouse."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reverse_etl.project import duckdb_path, profiles_dir, project_dir


@dataclass
class DbtResult:
    success: bool
    command: list[str]
    failures: list[str] = field(default_factory=list)
    exception: str | None = None


def dbt_env(project: Path, database: Path) -> None:
    """Point the built-in profile at the warehouse file (dbt reads it through env_var)."""
    os.environ["CDP_DUCKDB_PATH"] = str(database)
    database.parent.mkdir(parents=True, exist_ok=True)


def run_dbt(
    args: Sequence[str],
    *,
    project: Path | None = None,
    database: Path | None = None,
    quiet: bool = False,
) -> DbtResult:
    """Invoke ``dbt <args>`` with the project's profile; return what failed, in plain words."""
    from dbt.cli.main import dbtRunner

    project = project or project_dir()
    database = database or duckdb_path(project=project)
    dbt_env(project, database)
    command = [
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(profiles_dir()),
    ]
    if quiet:
        command = ["--quiet", *command]
    try:
        result = dbtRunner().invoke(command)
    finally:
        _release_duckdb()
    failures: list[str] = []
    res = result.result
    for node_result in getattr(res, "results", None) or []:
        status = str(getattr(node_result, "status", "")).lower()
        if status in {"error", "fail"}:
            node = getattr(node_result, "node", None)
            name = getattr(node, "unique_id", None) or getattr(node, "name", "?")
            message = (getattr(node_result, "message", None) or "").strip()
            failures.append(f"{name}: {message}")
    exception = str(result.exception) if result.exception else None
    return DbtResult(success=bool(result.success), command=command, failures=failures, exception=exception)


def _release_duckdb() -> None:
    """dbt-duckdb caches its database handle per process; close it so the warehouse file can be opened
    again (read-only, or by another process) once dbt is done."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter
        return
    env = DuckDBConnectionManager._ENV
    if env is not None:
        env.close()
    DuckDBConnectionManager.close_all_connections()


def target_path(project: Path, dbt_args: Sequence[str] = ()) -> Path:
    """Where dbt writes its artefacts: ``--target-path`` in ``dbt_args``, ``DBT_TARGET_PATH``, or
    ``<project>/target`` (a relative path is relative to the project, as dbt resolves it)."""
    value: str | None = None
    args = list(dbt_args)
    for i, arg in enumerate(args):
        if arg == "--target-path" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--target-path="):
            value = arg.split("=", 1)[1]
    value = value or os.environ.get("DBT_TARGET_PATH")
    if not value:
        return project / "target"
    path = Path(value).expanduser()
    return path if path.is_absolute() else project / path


def manifest(project: Path | None = None, dbt_args: Sequence[str] = ()) -> dict[str, Any]:
    """The manifest of the last parse or build (see ``target_path``)."""
    project = project or project_dir()
    path = target_path(project, dbt_args) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `cdp build` (or `dbt parse`) first.")
    return json.loads(path.read_text())
