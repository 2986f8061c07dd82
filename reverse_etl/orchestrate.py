"""`cdp run`: build, then sync what the build vouches for, for cron and CI.

``dbt build`` runs first. dbt writes what happened to every node in ``target/run_results.json``; a sync
runs only when its source model and every node upstream of it (models, seeds, snapshots, and the data
and unit tests on them) built and passed in this build. A sync over a model that failed, or whose
inputs failed, would send yesterday's data as if it were today's, or an emptied audience: it is
skipped, with the node that stopped it as the reason. Nodes this build did not select are not held
against a sync (they keep their previous build).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reverse_etl.dbt import DbtResult, run_dbt, target_path
from reverse_etl.sync.config import SourceConfig, SyncConfig, SyncConfigError, load_syncs
from reverse_etl.sync.engine import RunSummary
from reverse_etl.warehouse import Location

# dbt statuses that mean a node did not do its job in this build.
BAD_STATUSES = ("error", "fail", "skipped", "runtime error")
# Resource types whose failure makes the relations downstream of them untrustworthy.
BUILT_TYPES = ("model", "seed", "snapshot")


@dataclass
class SyncOutcome:
    """What happened to one sync in a `cdp run`."""

    name: str
    status: str  # success | partial | failed | interrupted | skipped | not_run
    reason: str = ""
    summary: RunSummary | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("success", "partial")


@dataclass
class PipelineResult:
    build: DbtResult | None
    build_ok: bool
    build_error: str | None = None
    outcomes: list[SyncOutcome] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # sync files that did not validate
    privacy_steps: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0: all built and every sync ran; 2: the build failed; 1: a sync failed, was skipped or is
        invalid (the build passed)."""
        if not self.build_ok:
            return 2
        if self.invalid or any(not o.ok for o in self.outcomes):
            return 1
        return 0


# -- dbt artefacts ---------------------------------------------------------------------------------


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


class Lineage:
    """The manifest's graph: which node a sync reads and everything upstream of it."""

    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self.manifest = manifest
        self.nodes: dict[str, Mapping[str, Any]] = {
            **manifest.get("nodes", {}),
            **manifest.get("sources", {}),
            **manifest.get("unit_tests", {}),
        }
        self.project_name = manifest.get("metadata", {}).get("project_name")
        parents = manifest.get("parent_map")
        if parents is None:
            parents = {uid: list(n.get("depends_on", {}).get("nodes", [])) for uid, n in self.nodes.items()}
        self.parents: dict[str, list[str]] = parents
        # Tests (data and unit) by the nodes they test.
        self.tests_of: dict[str, list[str]] = {}
        for uid, node in self.nodes.items():
            if node.get("resource_type") not in ("test", "unit_test"):
                continue
            for parent in node.get("depends_on", {}).get("nodes", []):
                self.tests_of.setdefault(parent, []).append(uid)

    def models_named(self, name: str) -> list[Mapping[str, Any]]:
        found = [
            n
            for n in self.manifest.get("nodes", {}).values()
            if n.get("resource_type") == "model" and n.get("name") == name
        ]
        found.sort(key=lambda n: n.get("package_name") != self.project_name)
        return found

    def relation_node(self, schema: str, table: str) -> Mapping[str, Any] | None:
        """The model, seed, snapshot or source that is ``schema.table`` in the warehouse."""
        for node in [*self.manifest.get("nodes", {}).values(), *self.manifest.get("sources", {}).values()]:
            if node.get("resource_type") not in (*BUILT_TYPES, "source"):
                continue
            name = node.get("identifier") if node.get("resource_type") == "source" else None
            name = name or node.get("alias") or node.get("name")
            if str(node.get("schema", "")).lower() == schema.lower() and str(name).lower() == table.lower():
                return node
        return None

    def source_node(self, config: SyncConfig) -> Mapping[str, Any] | None:
        """The dbt node a sync reads, or None when dbt does not build it (a plain table)."""
        src = config.source
        if src.kind == "model":
            found = self.models_named(src.name)
            return found[0] if found else None
        if src.kind == "segment":
            found = self.models_named("segment_members")
            return found[0] if found else None
        schema, table = src.name.split(".", 1)
        return self.relation_node(schema, table)

    def upstream(self, unique_id: str) -> set[str]:
        """The node and every node it depends on, transitively."""
        seen: set[str] = set()
        stack = [unique_id]
        while stack:
            uid = stack.pop()
            if uid in seen:
                continue
            seen.add(uid)
            stack.extend(self.parents.get(uid, []))
        return seen

    def guarding(self, unique_id: str) -> set[str]:
        """The node, its ancestors, and the tests on any of them: all must pass for the node to be trusted."""
        nodes = self.upstream(unique_id)
        tests = {t for uid in nodes for t in self.tests_of.get(uid, [])}
        return nodes | tests


def blocked_by(config: SyncConfig, lineage: Lineage, results: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why a sync must not run after this build, or None when its inputs are sound."""
    node = lineage.source_node(config)
    if node is None:
        if config.source.kind == "table":
            return None  # not built by dbt: nothing in this build vouches for it or against it
        return f"its source {config.source.describe()} is not in the dbt manifest (`cdp check` says more)"
    bad = []
    for uid in sorted(lineage.guarding(node["unique_id"])):
        result = results.get(uid)
        if result is not None and str(result.get("status", "")).lower() in BAD_STATUSES:
            bad.append((uid, str(result["status"]).lower(), (result.get("message") or "").strip()))
    if not bad:
        return None
    # The first failure that is not merely a skip explains the skips below it.
    bad.sort(key=lambda b: b[1] == "skipped")
    uid, status, message = bad[0]
    more = f" (and {len(bad) - 1} more node(s) failed or were skipped)" if len(bad) > 1 else ""
    detail = f": {message.splitlines()[0][:160]}" if message else ""
    what = "its source" if uid == node["unique_id"] else "upstream node"
    return f"{what} {uid} {status} in this build{detail}{more}"


def read_run_results(path: Path, since: float) -> dict[str, Mapping[str, Any]] | None:
    """Results of this build by node id; None when dbt did not write them in this build."""
    if not path.exists() or path.stat().st_mtime < since - 1:
        return None
    data = load_json(path)
    return {r["unique_id"]: r for r in data.get("results", []) if "unique_id" in r}


# -- the pipeline ------------------------------------------------------------------------------------


def select_syncs(directory: Path, names: Iterable[str] = ()) -> tuple[list[SyncConfig], list[str]]:
    """The syncs to run (all, or those named) and the errors of the invalid sync files among them."""
    syncs, errors = load_syncs(directory)
    wanted = list(names)
    if not wanted:
        return [syncs[n] for n in sorted(syncs)], [str(e) for e in errors]
    chosen: list[SyncConfig] = []
    for name in wanted:
        if name in syncs:
            chosen.append(syncs[name])
            continue
        for err in errors:
            if err.path is not None and err.path.stem == name:
                raise err
        known = ", ".join(sorted(syncs)) or "none"
        raise SyncConfigError(f"no sync named '{name}' in {directory} (valid syncs: {known})")
    return chosen, []


def pinned(config: SyncConfig, lineage: Lineage | None) -> SyncConfig:
    """A model source pinned to the relation this build's manifest gives it (the engine would read
    ``<project>/target``, which is not where this build wrote when ``--target-path`` moved it)."""
    if lineage is None or config.source.kind != "model":
        return config
    node = lineage.source_node(config)
    if node is None:
        return config
    relation = f"{node['schema']}.{node.get('alias') or node['name']}"
    return dataclasses.replace(config, source=SourceConfig("table", relation))


def run_one_sync(config: SyncConfig, project: Path, database: Location) -> SyncOutcome:
    """Run one sync under its lock; problems become an outcome, never an exception."""
    from reverse_etl.destinations.base import ConfigError
    from reverse_etl.project import ProjectError
    from reverse_etl.sync.engine import run_sync
    from reverse_etl.sync.lock import SyncLock, SyncLocked
    from reverse_etl.warehouse import Warehouse, WarehouseError, lock_anchor

    try:
        with SyncLock(lock_anchor(database), config.name), Warehouse(database) as wh:
            summary = run_sync(config, wh, project=project)
    except SyncLocked as exc:
        return SyncOutcome(config.name, "skipped", str(exc))
    except (ConfigError, ProjectError, WarehouseError) as exc:
        return SyncOutcome(config.name, "not_run", str(exc))
    reason = summary.error or ""
    if summary.status == "partial":
        reason = f"{summary.rejected} rejected, {summary.failed} failed (retried next run)"
    return SyncOutcome(config.name, summary.status, reason, summary)


def run_pipeline(
    project: Path,
    database: Location,
    *,
    dbt_args: Sequence[str] = (),
    syncs_directory: Path,
    sync_names: Iterable[str] = (),
    say: Callable[[str], None] = print,
) -> PipelineResult:
    """``dbt build`` with ``dbt_args``, then every selected sync whose inputs the build vouches for."""
    from reverse_etl import privacy
    from reverse_etl.warehouse import Warehouse, WarehouseTarget, location_exists

    t0 = time.monotonic()
    if isinstance(database, WarehouseTarget) and "--target" not in dbt_args:
        dbt_args = [*dbt_args, "--target", database.name]
    configs, invalid = select_syncs(syncs_directory, sync_names)
    started = time.time()
    say(f"dbt build {' '.join(dbt_args)}".rstrip())
    build = run_dbt(
        ["build", *dbt_args], project=project, database=database if isinstance(database, Path) else None
    )
    target = target_path(project, dbt_args)
    results = read_run_results(target / "run_results.json", started)
    result = PipelineResult(build=build, build_ok=build.success)
    lineage: Lineage | None = None
    if results is None:
        result.build_error = build.exception or "dbt wrote no run_results.json: the build did not run"
    else:
        manifest_path = target / "manifest.json"
        if manifest_path.exists():
            lineage = Lineage(load_json(manifest_path))
        else:
            result.build_error = f"{manifest_path} is missing after the build"
    if location_exists(database):
        with Warehouse(database) as wh:
            result.privacy_steps = privacy.reconcile(wh)
    result.invalid = invalid
    for config in configs:
        if lineage is None or results is None:
            if config.source.kind != "table":
                reason = f"the dbt build did not complete ({result.build_error})"
                result.outcomes.append(SyncOutcome(config.name, "skipped", reason))
                say(f"sync {config.name}: skipped: {reason}")
                continue
            reason = None
        else:
            reason = blocked_by(config, lineage, results)
        if reason:
            result.outcomes.append(SyncOutcome(config.name, "skipped", reason))
            say(f"sync {config.name}: skipped: {reason}")
            continue
        say(f"sync {config.name}: running")
        outcome = run_one_sync(pinned(config, lineage), project, database)
        result.outcomes.append(outcome)
        say(f"sync {config.name}: {outcome.status}" + (f": {outcome.reason}" if outcome.reason else ""))
    result.seconds = round(time.monotonic() - t0, 1)
    return result


def summary_rows(result: PipelineResult) -> list[dict[str, Any]]:
    """One row per sync for the summary table."""
    rows = []
    for o in result.outcomes:
        s = o.summary
        rows.append(
            {
                "sync": o.name,
                "status": o.status,
                "added": s.added if s else "",
                "changed": s.changed if s else "",
                "removed": s.removed if s else "",
                "invalid": s.invalid if s else "",
                "rejected": (s.rejected + s.failed) if s else "",
                "seconds": f"{s.duration_s:.1f}" if s else "",
                "reason": o.reason,
            }
        )
    return rows
