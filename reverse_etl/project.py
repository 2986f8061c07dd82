"""Where the dbt project, the warehouse file and the sync definitions live.

Resolution order everywhere: flag, environment variable (``CDP_*``), default.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
BUILTIN_PROFILES_DIR = PACKAGE_DIR / "profiles"


class ProjectError(Exception):
    """A configuration problem the user can fix; the message says how."""


def project_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The dbt project directory: flag, ``CDP_PROJECT_DIR``, the nearest parent of the working
    directory holding ``dbt_project.yml``, or the checkout this package was installed from."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get("CDP_PROJECT_DIR"):
        candidates.append(Path(os.environ["CDP_PROJECT_DIR"]))
    else:
        cwd = Path.cwd().resolve()
        candidates.extend([cwd, *cwd.parents])
        candidates.append(PACKAGE_DIR.parent)
    for candidate in candidates:
        if (candidate / "dbt_project.yml").is_file():
            return candidate.resolve()
    where = ", ".join(str(c) for c in candidates[:3])
    raise ProjectError(
        f"no dbt_project.yml found (looked in {where}). Run cdp from the project checkout, "
        "or set CDP_PROJECT_DIR to it."
    )


def duckdb_path(explicit: str | os.PathLike[str] | None = None, project: Path | None = None) -> Path:
    """The embedded warehouse file: flag, ``CDP_DUCKDB_PATH``, or ``<project>/warehouse/cdp.duckdb``."""
    value = explicit or os.environ.get("CDP_DUCKDB_PATH")
    if value:
        return Path(value).expanduser().resolve()
    return (project or project_dir()) / "warehouse" / "cdp.duckdb"


def profiles_dir() -> Path:
    """A user's own profiles (``CDP_PROFILES_DIR`` or ``DBT_PROFILES_DIR``), else the built-in DuckDB one."""
    for var in ("CDP_PROFILES_DIR", "DBT_PROFILES_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser().resolve()
    return BUILTIN_PROFILES_DIR


def syncs_dir(project: Path | None = None) -> Path:
    """Sync definitions: ``CDP_SYNCS_DIR`` or ``<project>/syncs``."""
    if os.environ.get("CDP_SYNCS_DIR"):
        return Path(os.environ["CDP_SYNCS_DIR"]).expanduser().resolve()
    return (project or project_dir()) / "syncs"
