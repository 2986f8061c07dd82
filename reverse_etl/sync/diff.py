"""Where a sync reads from, and the one query that says what changed since the last run.

The diff is computed in the warehouse: a full outer join of today's rows with ``cdp_sync.sync_state`` on
the primary key, comparing a hash of the mapped columns only. Its result is streamed in batches, so
memory does not grow with the table; the destination only ever sees what changed.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reverse_etl.sync.config import (
    NEW_ONLY_MODES,
    REMOVAL_MODES,
    FieldMapping,
    SyncConfig,
    SyncConfigError,
    did_you_mean,
)
from reverse_etl.warehouse import MARTS_SCHEMA, SYNC_SCHEMA, Warehouse

# Diff result operations: add (never delivered), change (delivered before, hash differs or pending),
# remove (on the ledger, gone from the source), forget (pending record gone from the source and never
# delivered: drop its state), invalid (not sendable; reason says why).
DIFF_OPERATIONS = ("add", "change", "remove", "forget", "invalid")


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class ResolvedSource:
    """A source as SQL: a relation and an optional filter with its parameters."""

    schema: str
    table: str
    where: str = ""
    params: tuple[Any, ...] = ()

    @property
    def relation(self) -> str:
        return f"{quote(self.schema)}.{quote(self.table)}"

    def select_from(self) -> str:
        return self.relation + (f" where {self.where}" if self.where else "")

    def describe(self) -> str:
        return f"{self.schema}.{self.table}" + (f" where {self.where}" if self.where else "")


def _model_relation(config: SyncConfig, project: Path | None) -> tuple[str, str]:
    from reverse_etl.dbt import manifest

    where = config.path
    try:
        data = manifest(project)
    except FileNotFoundError as exc:
        raise SyncConfigError(f"{where}: source.model: {exc}", config.path) from None
    models = [
        n
        for n in data.get("nodes", {}).values()
        if n.get("resource_type") == "model" and n.get("name") == config.source.name
    ]
    if not models:
        names = sorted(
            {n["name"] for n in data.get("nodes", {}).values() if n.get("resource_type") == "model"}
        )
        raise SyncConfigError(
            f"{where}: source.model: no dbt model named '{config.source.name}'"
            f"{did_you_mean(config.source.name, names)} (run `cdp build` after adding it)",
            config.path,
        )
    project_name = data.get("metadata", {}).get("project_name")
    models.sort(key=lambda n: n.get("package_name") != project_name)
    node = models[0]
    return node["schema"], node.get("alias") or node["name"]


def _segment_source(config: SyncConfig, wh: Warehouse, project: Path | None) -> ResolvedSource:
    """Members of one segment in ``marts.segment_members``, holdouts left out. A segment name that is
    neither a dbt model nor present in the table is a typo, not an empty segment: refusing it keeps a
    mirror or audience sync from removing everyone."""
    name = config.source.name
    if not wh.relation_exists(MARTS_SCHEMA, "segment_members"):
        raise SyncConfigError(
            f"{config.path}: source.segment: {MARTS_SCHEMA}.segment_members does not exist in {wh.path}: run `cdp build` first",
            config.path,
        )
    columns = wh.columns(MARTS_SCHEMA, "segment_members")
    where = "segment_name = ?" + (" and not coalesce(is_holdout, false)" if "is_holdout" in columns else "")
    resolved = ResolvedSource(MARTS_SCHEMA, "segment_members", where, (name,))
    present = wh.scalar(f"select count(*) from {resolved.relation} where segment_name = ?", [name])
    if not present:
        known = sorted(
            r["segment_name"] for r in wh.query(f"select distinct segment_name from {resolved.relation}")
        )
        try:
            from reverse_etl.dbt import manifest

            nodes = manifest(project).get("nodes", {}).values()
            known_models = {n["name"] for n in nodes if n.get("resource_type") == "model"}
        except FileNotFoundError:
            known_models = set()
        if name not in known_models:
            raise SyncConfigError(
                f"{config.path}: source.segment: no segment named '{name}'{did_you_mean(name, known)} "
                f"(segments with members: {', '.join(known) or 'none'})",
                config.path,
            )
    return resolved


def resolve_source(config: SyncConfig, wh: Warehouse, project: Path | None = None) -> ResolvedSource:
    """The relation a sync reads, checked to exist and to hold every column the sync needs."""
    src = config.source
    if src.kind == "model":
        schema, table = _model_relation(config, project)
        resolved = ResolvedSource(schema, table)
    elif src.kind == "segment":
        resolved = _segment_source(config, wh, project)
    else:
        schema, table = src.name.split(".", 1)
        resolved = ResolvedSource(schema, table)
    if not wh.relation_exists(resolved.schema, resolved.table):
        hint = "run `cdp build` first" if src.kind != "table" else "create it or fix the name"
        raise SyncConfigError(
            f"{config.path}: source: {resolved.schema}.{resolved.table} does not exist in {wh.path}: {hint}",
            config.path,
        )
    columns = wh.columns(resolved.schema, resolved.table)
    lowered = {c.lower(): c for c in columns}
    for col in config.source_columns():
        if col.lower() not in lowered:
            if col == config.primary_key:
                key = "primary_key"
            elif col in config.consent_columns():
                key = f"consent ({col[len('consent_') :]})"
            else:
                key = "mapping"
            raise SyncConfigError(
                f"{config.path}: {key}: column '{col}' is not in {resolved.schema}.{resolved.table}"
                f"{did_you_mean(col, columns)} (columns: {', '.join(columns)})",
                config.path,
            )
    return resolved


@dataclass(frozen=True)
class DiffQuery:
    sql: str
    params: list[Any]


def sql_literal(value: Any) -> str:
    """A YAML scalar as a SQL literal (constants in the mapping)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else "null"
    return "'" + str(value).replace("'", "''") + "'"


def field_sql(mapping: FieldMapping) -> str:
    """One destination field as a SQL expression over the source row.

    Templates render nulls as empty text and values with the warehouse's own text cast."""
    if mapping.kind == "column":
        return quote(mapping.value)
    if mapping.kind == "constant":
        return sql_literal(mapping.value)
    parts: list[str] = []
    for literal, name, _spec, _conv in string.Formatter().parse(mapping.value):
        if literal:
            parts.append(sql_literal(literal))
        if name is not None:
            parts.append(f"coalesce(cast({quote(name)} as varchar), '')")
    return "concat(" + ", ".join(parts) + ")"


def fields_sql(config: SyncConfig) -> str:
    """The mapped record as JSON, built in the warehouse (typed, and far faster than per-row Python)."""
    members = ", ".join(f"{quote(m.field)} := {field_sql(m)}" for m in config.mapping)
    return f"to_json(struct_pack({members}))"


def hash_sql(config: SyncConfig) -> str:
    """The row hash: the mapping itself (one parameter) and every mapped column."""
    return "hash(" + ", ".join(["?", *(quote(c) for c in config.hashed_columns())]) + ")"


def _where(source: ResolvedSource, condition: str) -> str:
    return f"({source.where}) and {condition}" if source.where else condition


def unkeyed_hashes(config: SyncConfig, source: ResolvedSource) -> DiffQuery:
    """The distinct content hashes of the source rows without a primary key (``row_hash``)."""
    pk = quote(config.primary_key)
    sql = (
        f"select distinct {hash_sql(config)} as row_hash from {source.relation} "
        f"where {_where(source, f'{pk} is null')}"
    )
    return DiffQuery(sql, [config.mapping_signature(), *source.params])


def diff_query(config: SyncConfig, source: ResolvedSource, *, only_pending: bool = False) -> DiffQuery:
    """The single SQL statement that yields added, changed, removed and invalid records.

    Columns: ``__key``, ``__op`` (see DIFF_OPERATIONS), ``__reason`` (why invalid), ``__hash`` (of the
    mapped columns and the mapping itself), ``__payload`` (the fields last delivered, for removals and
    to see whether a record's identifiers changed), ``__fields`` (the mapped record as JSON, for adds
    and changes), ``__inv_reason`` and ``__inv_hash`` (what the record was last recorded invalid for,
    so an unchanged invalid record is counted but not recorded again)."""
    # Consent columns are read for the filter; those the mapping also sends stay in the row.
    mapped = config.hashed_columns()
    data_cols = [c for c in config.source_columns() if c not in config.consent_columns() or c in mapped]
    col_list = ", ".join(quote(c) for c in data_cols)
    consent = (
        " and ".join(f"coalesce(cast({quote(c)} as boolean), false)" for c in config.consent_columns())
        or "true"
    )
    removal = config.mode in REMOVAL_MODES
    new_only = config.mode in NEW_ONLY_MODES
    data_out = ", ".join(f"k.{quote(c)}" for c in data_cols)
    filters = []
    if not removal:
        filters.append("and __op <> 'remove'")
    if new_only:
        filters.append("and not (__op = 'change' and __state_status = 'synced')")
    if only_pending:
        filters.append("and __state_status in ('rejected', 'failed')")
    pk = quote(config.primary_key)
    # Null keys are filtered on the typed column, so the scan can skip row groups without nulls.
    null_keys = f"""union all
select null as __key, 'invalid' as __op, 'null primary key' as __reason, n.__hash,
       null as __payload, null as __fields, u.reason as __inv_reason, u.row_hash as __inv_hash
from (
    select {hash_sql(config)} as __hash from {source.relation} where {_where(source, f"{pk} is null")}
) as n
left join (
    select row_hash, min(reason) as reason from {SYNC_SCHEMA}.sync_invalid_unkeyed
    where sync_name = ? group by row_hash
) as u on n.__hash = u.row_hash"""
    # src is inlined where used (scans are cheap, materialising every column is not); duplicate keys
    # are found on the typed key column, not on its text, and materialised once (usually empty).
    sql = f"""
with src as not materialized (
    select cast({pk} as varchar) as __key,
           {col_list},
           {consent} as __consent,
           {hash_sql(config)} as __hash
    from {source.relation} where {_where(source, f"{pk} is not null")}
),
dups as materialized (
    select cast({pk} as varchar) as __key
    from {source.relation} where {_where(source, f"{pk} is not null")}
    group by {pk} having count(*) > 1
),
keyed as (
    select src.*, dups.__key is not null as __dup
    from src left join dups using (__key)
),
st as (
    select record_key, row_hash, status, in_destination, acked_at, payload, invalid_reason, invalid_hash
    from {SYNC_SCHEMA}.sync_state where sync_name = ?
),
joined as (
    select
        coalesce(k.__key, st.record_key) as __key,
        case
            when k.__key is null then case when st.in_destination then 'remove' else 'forget' end
            when k.__dup then 'invalid'
            when not k.__consent then
                case when {str(removal).lower()} and st.in_destination then 'remove' else 'invalid' end
            when st.record_key is null or st.acked_at is null then 'add'
            when st.row_hash is distinct from k.__hash or st.status <> 'synced'
                 or st.invalid_reason is not null then 'change'
            else 'same'
        end as __op,
        case
            when k.__key is null then null
            when k.__dup then 'duplicate primary key'
            when not k.__consent then 'missing consent'
        end as __reason,
        k.__hash,
        st.payload as __payload,
        st.status as __state_status,
        st.invalid_reason as __inv_reason,
        st.invalid_hash as __inv_hash,
        {data_out}
    from keyed k
    full outer join st on k.__key = st.record_key
    where k.__key is null or st.record_key is null or k.__dup or not k.__consent
       or st.row_hash is distinct from k.__hash or st.status <> 'synced' or st.invalid_reason is not null
)
select __key, __op, __reason, __hash, __payload,
       case when __op in ('add', 'change') then {fields_sql(config)} end as __fields,
       __inv_reason, __inv_hash
from joined
where __op <> 'same'
  {" ".join(filters)}
{"" if only_pending else null_keys}
"""
    params: list[Any] = [config.mapping_signature(), *source.params, *source.params, config.name]
    if not only_pending:
        params += [config.mapping_signature(), *source.params, config.name]
    return DiffQuery(sql, params)


def source_row_count(wh: Warehouse, source: ResolvedSource) -> int:
    return int(wh.scalar(f"select count(*) from {source.select_from()}", list(source.params)) or 0)
