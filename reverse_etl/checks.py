"""`cdp check`: will every sync still work after this change? For pull-request CI.

Validates every sync file, resolves every source against the dbt manifest, and checks that each column
a sync reads (primary key, mapped columns, consent columns, including the purposes its destination
needs) exists in the built relation, or, when the warehouse has not built it, among the model's
documented columns. A model renamed or a column dropped in a PR fails the check with the sync file,
the key, the column and the fix, before a run would fail (or, worse, empty an audience) in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reverse_etl import exposures as exposures_mod
from reverse_etl.orchestrate import Lineage
from reverse_etl.privacy import with_required_consent
from reverse_etl.sync.config import SyncConfig, did_you_mean, load_syncs
from reverse_etl.warehouse import Location, Warehouse, location_exists


@dataclass
class Problem:
    level: str  # error | warning
    where: str  # the sync file (or what else is wrong)
    key: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.where}: {self.key}: {self.message}. Fix: {self.fix}"


@dataclass
class SyncCheck:
    name: str
    relation: str = ""
    columns_from: str = ""  # warehouse | manifest | unverified
    status: str = "ok"  # ok | error | warning


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    syncs: list[SyncCheck] = field(default_factory=list)
    exposures_text: str | None = None
    exposures_written: Path | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def project_segments(project: Path) -> set[str]:
    """Segment names the project declares in its vars (models in cdp_segments, YAML segments)."""
    try:
        data = yaml.safe_load((project / "dbt_project.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return set()
    variables = data.get("vars") or {}
    names = {str(s) for s in variables.get("cdp_segments") or []}
    for item in variables.get("cdp_yaml_segments") or []:
        if isinstance(item, Mapping) and item.get("name"):
            names.add(str(item["name"]))
    return names


class _Columns:
    """Columns of a relation: from the warehouse when built, else from the manifest's documentation."""

    def __init__(self, wh: Warehouse | None) -> None:
        self.wh = wh

    def of(self, schema: str, table: str, node: Mapping[str, Any] | None) -> tuple[list[str] | None, str]:
        if self.wh is not None and self.wh.relation_exists(schema, table):
            return self.wh.columns(schema, table), "warehouse"
        documented = list((node or {}).get("columns", {}) or {})
        if documented:
            return documented, "manifest"
        return None, "unverified"


def _column_key(config: SyncConfig, column: str) -> tuple[str, str]:
    """The sync file key that reads ``column``, and how to fix it when the column is gone."""
    if column == config.primary_key:
        return "primary_key", f"restore column '{column}' in the source, or change primary_key"
    for m in config.mapping:
        if column in m.columns:
            return (
                f"mapping.{m.field}",
                f"restore column '{column}' in the source, or map '{m.field}' to another column (or remove it)",
            )
    purpose = column[len("consent_") :] if column.startswith("consent_") else column
    if purpose in config.consent:
        return (
            f"consent ({purpose})",
            f"restore column '{column}' (consent for {purpose}); the destination or the sync needs it",
        )
    return "source", f"restore column '{column}'"


def check_sync(
    config: SyncConfig,
    lineage: Lineage,
    columns: _Columns,
    segments: set[str],
    report: CheckReport,
) -> SyncCheck:
    where = _rel(config.path)
    result = SyncCheck(config.name)

    def fail(key: str, message: str, fix: str, level: str = "error") -> None:
        report.problems.append(Problem(level, where, key, message, fix))
        if level == "error" or result.status == "ok":
            result.status = level

    effective = with_required_consent(config)
    src = config.source
    node = lineage.source_node(config)
    schema = table = ""
    if src.kind == "model":
        if node is None:
            disabled = [
                n
                for nodes in lineage.manifest.get("disabled", {}).values()
                for n in nodes
                if n.get("name") == src.name
            ]
            if disabled:
                fail(
                    "source.model",
                    f"dbt model '{src.name}' is disabled (a cdp_using_* var switches its source off)",
                    "enable the model's source, or point the sync at another model",
                )
            else:
                names = sorted(
                    {
                        n["name"]
                        for n in lineage.manifest.get("nodes", {}).values()
                        if n.get("resource_type") == "model"
                    }
                )
                fail(
                    "source.model",
                    f"no dbt model named '{src.name}'{did_you_mean(src.name, names)}",
                    "restore or rename the model, or change source.model to a model that exists",
                )
            return result
    elif src.kind == "segment":
        if node is None:
            fail(
                "source.segment",
                "the dbt project has no segment_members model",
                "restore models/marts/segments/segment_members.sql",
            )
            return result
        upstream_models = {
            lineage.nodes[uid]["name"]
            for uid in lineage.upstream(node["unique_id"])
            if uid in lineage.nodes and lineage.nodes[uid].get("resource_type") == "model"
        }
        known = segments | upstream_models
        built: set[str] = set()
        if columns.wh is not None and columns.wh.relation_exists(
            node["schema"], node.get("alias") or node["name"]
        ):
            rel = f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
            built = {r["segment_name"] for r in columns.wh.query(f"select distinct segment_name from {rel}")}
        if src.name not in known | built:
            fail(
                "source.segment",
                f"no segment named '{src.name}'{did_you_mean(src.name, sorted(segments | built))}",
                "add the segment to var cdp_segments (or cdp_yaml_segments), or fix the name",
            )
            return result
    if node is not None:
        schema, table = node["schema"], node.get("alias") or node["name"]
        if node.get("resource_type") == "source":
            table = node.get("identifier") or node["name"]
    else:  # a table dbt does not build
        schema, table = src.name.split(".", 1)
        if columns.wh is None or not columns.wh.relation_exists(schema, table):
            fail(
                "source.table",
                f"{src.name} is neither built by dbt nor present in the warehouse",
                "create the table, or point the sync at a dbt model",
            )
            return result
    result.relation = f"{schema}.{table}"
    found, origin = columns.of(schema, table, node)
    result.columns_from = origin
    if found is None:
        fail(
            "source",
            f"cannot verify the columns of {schema}.{table}: it is not built here and its YAML documents no columns",
            "run `cdp build` before `cdp check`, or document the model's columns",
            level="warning",
        )
        return result
    lowered = {c.lower() for c in found}
    for column in effective.source_columns():
        if column.lower() in lowered:
            continue
        key, fix = _column_key(effective, column)
        added = ""
        if column.startswith("consent_") and column[len("consent_") :] not in config.consent:
            added = f" (destination {config.destination.type} needs consent for {column[len('consent_') :]})"
        if origin == "warehouse":
            fail(
                key, f"column '{column}' is not in {schema}.{table}{added}{did_you_mean(column, found)}", fix
            )
        else:  # YAML often documents only some columns: a miss there is worth a look, not a failure
            fail(
                key,
                f"column '{column}' is not among the documented columns of {schema}.{table}{added}"
                f"{did_you_mean(column, found)}",
                f"build the model before `cdp check` to be sure, and document the column; or: {fix}",
                level="warning",
            )
    return result


def run_checks(
    project: Path,
    database: Location | None,
    syncs_directory: Path,
    manifest: Mapping[str, Any],
    *,
    write_exposures: bool = False,
    owner: Mapping[str, str] | None = None,
) -> CheckReport:
    """Check every sync against the manifest and the warehouse; generate (and maybe write) exposures."""
    report = CheckReport()
    syncs, errors = load_syncs(syncs_directory)
    for err in errors:
        where = _rel(err.path) if err.path else str(syncs_directory)
        text = str(err)
        prefix = f"{where}: "
        body = text[len(prefix) :] if text.startswith(prefix) else text
        key, _, message = body.partition(": ")
        report.problems.append(
            Problem("error", where, key if message else "file", message or body, "see docs/syncs.md")
        )
    lineage = Lineage(manifest)
    segments = project_segments(project)
    wh: Warehouse | None = None
    if database is not None and location_exists(database):
        wh = Warehouse(database, read_only=True)
    try:
        columns = _Columns(wh)
        for name in sorted(syncs):
            report.syncs.append(check_sync(syncs[name], lineage, columns, segments, report))
    finally:
        if wh is not None:
            wh.close()
    # Exposures: only for syncs whose source resolved, so dbt can always parse the file.
    good = [syncs[s.name] for s in report.syncs if s.status != "error"]
    text = exposures_mod.render(exposures_mod.exposures(good, lineage, owner))
    report.exposures_text = text
    path = exposures_mod.exposures_path(project)
    if write_exposures:
        if not path.exists() or path.read_text() != text:
            report.exposures_written = exposures_mod.write(project, text)
    elif path.exists() and path.read_text() != text:
        report.problems.append(
            Problem(
                "error",
                _rel(path),
                "exposures",
                "the generated dbt exposures no longer match the sync files",
                "run `cdp check --write-exposures` and commit the file",
            )
        )
    elif not path.exists() and good:
        report.problems.append(
            Problem(
                "warning",
                _rel(path),
                "exposures",
                "no dbt exposures for the syncs yet",
                "run `cdp check --write-exposures` to add the syncs to dbt's lineage",
            )
        )
    return report
