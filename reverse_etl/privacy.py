"""Consent the destinations need, and the right to be forgotten.

Consent: a sync sends a row only when the person consented to every purpose the sync names in its YAML
and every purpose its destination needs (ad platforms need ``ads_personalization`` and
``ad_user_data``). A revocation makes the row unsendable; mirror and audience syncs then remove it.

Erasure: ``forget()`` resolves an identifier to its customer in ``marts.identity_graph`` and records a
deletion request with a hash of each of that customer's identifiers in the ``cdp_privacy`` schema. From
then on:

* the dbt build drops those identifiers (``int_identifiers`` anti-joins ``forgotten_identifiers``), so
  the person leaves identity, profiles and segments;
* every sync stops sending their keys and removes the ones on its ownership ledger, whatever its mode
  (the engine asks :func:`forgotten_rows` for them on every run);
* ``reconcile()`` redacts their keys, payloads and reasons in ``cdp_sync`` once no sync holds them, and
  writes each step to ``deletion_audit``.

The privacy tables hold hashes (md5 of the normalised value, as dbt's ``hash`` macro computes it), never
the identifiers themselves: the erasure list must not be a copy of what it erases.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reverse_etl.warehouse import MARTS_SCHEMA, SYNC_SCHEMA, Warehouse, WarehouseError

if TYPE_CHECKING:
    from reverse_etl.destinations.base import Destination
    from reverse_etl.sync.config import SyncConfig

PRIVACY_SCHEMA = "cdp_privacy"
P = PRIVACY_SCHEMA
REDACTED = "[redacted: erasure request]"

# Keep in step with the on-run-start hook in dbt_project.yml, which creates the same table so the
# project builds on a fresh warehouse.
FORGOTTEN_DDL = f"""create table if not exists {P}.forgotten_identifiers (
    request_id varchar,
    identifier_type varchar,
    identifier_hash varchar,
    value_hash varchar,
    forgotten_at timestamp
)"""

DDL = [
    f"create schema if not exists {P}",
    FORGOTTEN_DDL,
    f"""create table if not exists {P}.deletion_requests (
        request_id varchar primary key,
        requested_at timestamp not null,
        customer_id varchar,            -- pseudonymous; null when the identifier was not in the graph
        lookup_type varchar,            -- the type of the identifier the request was made with
        lookup_hash varchar,            -- md5 of that identifier (never the identifier itself)
        identifiers integer not null,
        requested_by varchar,
        note varchar,
        status varchar not null,        -- open | completed
        completed_at timestamp
    )""",
    f"""create table if not exists {P}.deletion_audit (
        request_id varchar not null,
        step varchar not null,          -- requested | excluded_from_build | removed | manual_deletion | purged | completed
        sync_name varchar,
        records bigint,
        detail varchar,
        "at" timestamp not null
    )""",
]


class PrivacyError(WarehouseError):
    """A privacy request cannot be carried out as asked; the message says what to do."""


def md5(text: str) -> str:
    """The hash dbt's ``hash`` macro computes in the warehouse (hex md5 of the UTF-8 text)."""
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - a lookup key, not a password hash


def utcnow() -> datetime:
    from reverse_etl.sync.state import utcnow as now

    return now()


# -- consent ---------------------------------------------------------------------------------------


def destination_purposes(destination: type[Destination]) -> tuple[str, ...]:
    """Consent purposes a destination needs from every person it is sent."""
    return tuple(destination.consent_purposes)


def effective_purposes(config: SyncConfig) -> tuple[str, ...]:
    """The sync's own purposes, then the destination's that it did not name."""
    from reverse_etl.destinations import destination_class

    cls = destination_class(config.destination.type, source=str(config.path))
    purposes = list(config.consent)
    purposes.extend(p for p in destination_purposes(cls) if p not in purposes)
    return tuple(purposes)


def with_required_consent(config: SyncConfig) -> SyncConfig:
    """The config the engine runs: consent widened to what the destination needs."""
    purposes = effective_purposes(config)
    return config if purposes == config.consent else dataclasses.replace(config, consent=purposes)


# -- schema ----------------------------------------------------------------------------------------


def ensure_schema(wh: Warehouse) -> None:
    with wh.transaction():
        for statement in DDL:
            wh.execute(statement)


def has_requests(wh: Warehouse) -> bool:
    return wh.relation_exists(P, "forgotten_identifiers") and bool(
        wh.scalar(f"select count(*) from {P}.forgotten_identifiers")
    )


# Key matching: a sync's keys are whatever its primary key is (customer_id, email, user_id...): a key
# belongs to a forgotten person when its hash, or the hash of its trimmed lower-case form, is one of
# their identifiers' value hashes.
def key_match_sql(column: str) -> str:
    return (
        f"(md5({column}) in (select value_hash from {P}.forgotten_identifiers) "
        f"or md5(lower(trim({column}))) in (select value_hash from {P}.forgotten_identifiers))"
    )


def _request_key_match_sql(column: str) -> str:
    """The same, for one request (its id is the query's first parameter)."""
    sub = f"(select value_hash from {P}.forgotten_identifiers where request_id = ?)"
    return f"(md5({column}) in {sub} or md5(lower(trim({column}))) in {sub})"


# -- requests --------------------------------------------------------------------------------------


@dataclass
class ForgetResult:
    request_id: str
    customer_id: str | None
    identifiers: dict[str, int]  # identifier type -> count
    found: bool
    warnings: list[str] = field(default_factory=list)


def _normalise(value: str, identifier_type: str | None) -> str:
    text = value.strip()
    if identifier_type == "email" or (identifier_type is None and "@" in text):
        return text.lower()
    if identifier_type == "phone":
        digits = re.sub(r"\D", "", text)
        return f"+{digits}" if digits else text
    return text


def _resolve(
    wh: Warehouse, value: str, identifier_type: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """identity_graph rows of the customer the identifier belongs to, and the type it matched as.
    Exact matches only: an erasure must never reach the wrong person through a fuzzy match."""
    if not wh.relation_exists(MARTS_SCHEMA, "identity_graph"):
        return [], None
    graph = f"{MARTS_SCHEMA}.identity_graph"
    text = value.strip()
    if identifier_type in (None, "customer_id"):
        rows = wh.query(f"select * from {graph} where customer_id = ?", [text])
        if rows or identifier_type == "customer_id":
            return rows, "customer_id"
    candidates = list(dict.fromkeys([text, text.lower(), _normalise(text, identifier_type)]))
    if identifier_type is None and len(re.sub(r"\D", "", text)) >= 7 and "@" not in text:
        candidates.append(_normalise(text, "phone"))
    marks = ", ".join("?" for _ in candidates)
    type_filter = "and identifier_type = ?" if identifier_type else ""
    params: list[Any] = [*candidates, *([identifier_type] if identifier_type else [])]
    hits = wh.query(
        f"select distinct customer_id, identifier_type from {graph} "
        f"where identifier_value in ({marks}) {type_filter}",
        params,
    )
    customers = sorted({h["customer_id"] for h in hits})
    if len(customers) > 1:
        types = ", ".join(sorted({h["identifier_type"] for h in hits}))
        raise PrivacyError(
            f"'{value}' matches {len(customers)} customers (as {types}); pass --type to say which "
            "identifier you mean, or give the customer_id"
        )
    if not customers:
        return [], None
    matched = sorted(h["identifier_type"] for h in hits)[0]
    return wh.query(f"select * from {graph} where customer_id = ?", [customers[0]]), matched


def _previous_ids(wh: Warehouse, customer_id: str) -> list[str]:
    """Ids the customer had before a merge: a sync may still hold records under them."""
    if not wh.relation_exists(MARTS_SCHEMA, "customer_id_changes"):
        return []
    cols = set(wh.columns(MARTS_SCHEMA, "customer_id_changes"))
    if not {"old_customer_id", "new_customer_id"} <= cols:
        return []
    rows = wh.query(
        f"select distinct old_customer_id from {MARTS_SCHEMA}.customer_id_changes "
        "where new_customer_id = ? and old_customer_id is not null and old_customer_id <> ?",
        [customer_id, customer_id],
    )
    return [r["old_customer_id"] for r in rows]


def new_request_id() -> str:
    return f"del_{time.strftime('%Y%m%d%H%M%S', time.gmtime())}_{uuid.uuid4().hex[:8]}"


def forget(
    wh: Warehouse,
    value: str,
    *,
    identifier_type: str | None = None,
    requested_by: str | None = None,
    note: str | None = None,
) -> ForgetResult:
    """Record a deletion request for the customer ``value`` belongs to (every identifier of theirs)."""
    if not value or not value.strip():
        raise PrivacyError("give the identifier to forget (an email, phone, user_id, ... or a customer_id)")
    ensure_schema(wh)
    rows, matched = _resolve(wh, value, identifier_type)
    warnings: list[str] = []
    pairs: list[tuple[str, str]]
    customer_id: str | None
    if rows:
        customer_id = rows[0]["customer_id"]
        pairs = [(r["identifier_type"], r["identifier_value"]) for r in rows]
        pairs += [("customer_id", cid) for cid in [customer_id, *_previous_ids(wh, customer_id)]]
        lookup_type = matched or "customer_id"
    else:
        if not identifier_type:
            where = (
                "is not in marts.identity_graph"
                if wh.relation_exists(MARTS_SCHEMA, "identity_graph")
                else "cannot be looked up: marts.identity_graph does not exist (run `cdp build`)"
            )
            raise PrivacyError(
                f"'{value}' {where}. To record it anyway, pass --type (email, phone, user_id, "
                "anonymous_id, crm_id, customer_id) so the build and the syncs can exclude it."
            )
        customer_id = None
        lookup_type = identifier_type
        pairs = [(identifier_type, _normalise(value, identifier_type))]
        warnings.append(
            f"not found in marts.identity_graph: recorded the {identifier_type} itself; other "
            "identifiers of this person are not covered until you forget them too"
        )
    request_id = new_request_id()
    now = utcnow()
    seen: set[tuple[str, str]] = set()
    data: dict[str, list[Any]] = {k: [] for k in ("identifier_type", "identifier_hash", "value_hash")}
    counts: dict[str, int] = {}
    for kind, identifier in pairs:
        if (kind, identifier) in seen:
            continue
        seen.add((kind, identifier))
        data["identifier_type"].append(kind)
        data["identifier_hash"].append(md5(f"{kind}:{identifier}"))
        data["value_hash"].append(md5(identifier))
        counts[kind] = counts.get(kind, 0) + 1
    n = len(data["identifier_type"])
    with wh.transaction():
        wh.append(
            f"{P}.forgotten_identifiers",
            {"request_id": [request_id] * n, **data, "forgotten_at": [now] * n},
        )
        wh.execute(
            f"insert into {P}.deletion_requests (request_id, requested_at, customer_id, lookup_type, "
            "lookup_hash, identifiers, requested_by, note, status) values (?, ?, ?, ?, ?, ?, ?, ?, 'open')",
            [
                request_id,
                now,
                customer_id,
                lookup_type,
                md5(_normalise(value, lookup_type)),
                n,
                requested_by,
                note,
            ],
        )
        _audit(wh, request_id, "requested", detail=f"{n} identifiers: {_describe(counts)}", at=now)
    return ForgetResult(request_id, customer_id, counts, bool(rows), warnings)


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


def _audit(
    wh: Warehouse,
    request_id: str,
    step: str,
    *,
    sync_name: str | None = None,
    records: int | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> None:
    wh.execute(
        f'insert into {P}.deletion_audit (request_id, step, sync_name, records, detail, "at") '
        "values (?, ?, ?, ?, ?, ?)",
        [request_id, step, sync_name, records, detail, at or utcnow()],
    )


# -- the engine's side -----------------------------------------------------------------------------


def exclusion_sql(diff_sql: str) -> str:
    """The diff without rows of forgotten people: whatever the build says, they are never sent."""
    return f"select * from ({diff_sql}) as __diff where __diff.__key is null or not {key_match_sql('__diff.__key')}"


def can_remove(destination: type[Destination]) -> bool:
    from reverse_etl.sync.config import REMOVAL_MODES

    return any(mode in REMOVAL_MODES for mode in destination.modes)


def forgotten_rows(wh: Warehouse, sync_name: str, removable: bool, destination: str) -> list[dict[str, Any]]:
    """Diff-shaped rows for the sync's keys that belong to forgotten people: a removal for each key on
    the ledger (whatever the mode), a ``forget`` (drop the state) for the others. A destination that
    cannot delete gets a ``forget`` whose reason says to delete by hand."""
    if not has_requests(wh) or not wh.relation_exists(SYNC_SCHEMA, "sync_state"):
        return []
    manual = f"erasure request: {destination} cannot delete records; delete this one there by hand"
    remove_op = "remove" if removable else "forget"
    return wh.query(
        f"""
        select record_key as __key,
               case when in_destination then ? else 'forget' end as __op,
               case when in_destination and not ? then ? else 'erasure request' end as __reason,
               null as __hash,
               payload as __payload,
               null as __fields
        from {SYNC_SCHEMA}.sync_state
        where sync_name = ? and {key_match_sql("record_key")}
        order by record_key
        """,
        [remove_op, removable, manual, sync_name],
    )


# -- reconciliation --------------------------------------------------------------------------------


def _requests(wh: Warehouse, status: str | None = None) -> list[dict[str, Any]]:
    where = "where status = ?" if status else ""
    return wh.query(
        f"select * from {P}.deletion_requests {where} order by requested_at", [status] if status else []
    )


def _steps(wh: Warehouse, request_id: str) -> list[dict[str, Any]]:
    return wh.query(
        f'select * from {P}.deletion_audit where request_id = ? order by "at", step', [request_id]
    )


def _sync_lock_free(wh: Warehouse, sync_name: str) -> Any:
    """The sync's lock when it can be taken now (re-entrant for the run holding it), else None."""
    from reverse_etl.sync.lock import SyncLock, SyncLocked

    lock = SyncLock(wh.path, sync_name)
    try:
        lock.acquire()
    except SyncLocked:
        return None
    return lock


class _Trail:
    """The audit steps of one request: each recorded once."""

    def __init__(self, wh: Warehouse, request_id: str, new: list[dict[str, Any]]) -> None:
        self.wh = wh
        self.request_id = request_id
        self.new = new
        self.done = {(s["step"], s["sync_name"]) for s in _steps(wh, request_id)}

    def has(self, step: str, sync_name: str | None = None) -> bool:
        return (step, sync_name) in self.done

    def add(
        self, step: str, sync_name: str | None = None, records: int | None = None, detail: str | None = None
    ) -> None:
        if self.has(step, sync_name):
            return
        _audit(self.wh, self.request_id, step, sync_name=sync_name, records=records, detail=detail)
        self.new.append(
            {"request_id": self.request_id, "step": step, "sync_name": sync_name, "records": records}
        )
        self.done.add((step, sync_name))


def reconcile(wh: Warehouse) -> list[dict[str, Any]]:
    """Bring every open request forward and record what happened; returns the new audit steps.

    Idempotent: each step is recorded once. Purging a sync's records waits until no key of the person
    is left on that sync's ledger (the removal needs the payload), and skips a sync that is running."""
    if not wh.relation_exists(P, "deletion_requests"):
        return []
    new: list[dict[str, Any]] = []
    graph_built = wh.relation_exists(MARTS_SCHEMA, "identity_graph")
    sync_tables = wh.relation_exists(SYNC_SCHEMA, "sync_records") and wh.relation_exists(
        SYNC_SCHEMA, "sync_state"
    )
    for request in _requests(wh, "open"):
        rid = request["request_id"]
        trail = _Trail(wh, rid, new)
        if graph_built and not trail.has("excluded_from_build") and not _in_graph(wh, rid):
            trail.add("excluded_from_build", detail="no identifier of the request is in marts.identity_graph")
        held = _removals_and_purge(wh, trail) if sync_tables else []
        if trail.has("excluded_from_build") and not held and not (sync_tables and _records_left(wh, rid)):
            wh.execute(
                f"update {P}.deletion_requests set status = 'completed', completed_at = ? where request_id = ?",
                [utcnow(), rid],
            )
            trail.add("completed", detail="excluded from the build, removed from every sync, purged")
    return new


def _in_graph(wh: Warehouse, request_id: str) -> int:
    return int(
        wh.scalar(
            f"select count(*) from {MARTS_SCHEMA}.identity_graph where "
            "md5(identifier_type || ':' || identifier_value) in "
            f"(select identifier_hash from {P}.forgotten_identifiers where request_id = ?)",
            [request_id],
        )
        or 0
    )


def _removals_and_purge(wh: Warehouse, trail: _Trail) -> list[str]:
    """Audit removals and manual deletions per sync, purge the syncs whose ledger no longer holds the
    person; returns the syncs that still hold a key of theirs."""
    rid = trail.request_id
    match = _request_key_match_sql("record_key")
    for row in wh.query(
        f"""select sync_name,
                   count(*) filter (where operation = 'remove' and status = 'synced') as removed,
                   count(*) filter (where operation = 'forget' and reason like 'erasure request: %') as manual,
                   any_value(reason) filter (where operation = 'forget' and reason like 'erasure request: %') as why
            from {SYNC_SCHEMA}.sync_records
            where {match} and "at" >= (select requested_at from {P}.deletion_requests where request_id = ?)
            group by sync_name order by sync_name""",
        [rid, rid, rid],
    ):
        name = row["sync_name"]
        if row["removed"]:
            trail.add(
                "removed", name, int(row["removed"]), f"removed from {name} through its ownership ledger"
            )
        if row["manual"]:
            trail.add("manual_deletion", name, int(row["manual"]), row["why"])
    held = _syncs_with(wh, "sync_state", rid)
    for name in _syncs_with(wh, "sync_records", rid):
        if name in held:
            continue  # the removal still needs the payload: purge after it
        lock = _sync_lock_free(wh, name)
        if lock is None:
            continue  # running now: the run's own reconcile purges it
        try:
            with wh.transaction():
                n = wh.scalar(
                    f"select count(*) from {SYNC_SCHEMA}.sync_records where sync_name = ? and {match}",
                    [name, rid, rid],
                )
                wh.execute(
                    f"""update {SYNC_SCHEMA}.sync_records
                        set record_key = 'redacted:' || substr(md5(record_key), 1, 16),
                            payload = case when payload is null then null else ? end,
                            reason = case when reason is null then null else ? end
                        where sync_name = ? and {match}""",
                    [REDACTED, REDACTED, name, rid, rid],
                )
                trail.add(
                    "purged",
                    name,
                    int(n or 0),
                    f"keys, payloads and reasons redacted in {SYNC_SCHEMA}.sync_records",
                )
        finally:
            lock.release()
    return held


def _syncs_with(wh: Warehouse, table: str, request_id: str) -> list[str]:
    match = _request_key_match_sql("record_key")
    rows = wh.query(
        f"select distinct sync_name from {SYNC_SCHEMA}.{table} where {match} order by 1",
        [request_id, request_id],
    )
    return [r["sync_name"] for r in rows]


def _records_left(wh: Warehouse, rid: str) -> int:
    match = _request_key_match_sql("record_key")
    return int(
        wh.scalar(f"select count(*) from {SYNC_SCHEMA}.sync_records where {match}", [rid, rid]) or 0
    ) + int(wh.scalar(f"select count(*) from {SYNC_SCHEMA}.sync_state where {match}", [rid, rid]) or 0)


# -- status ----------------------------------------------------------------------------------------


@dataclass
class RequestStatus:
    request: dict[str, Any]
    steps: list[dict[str, Any]]
    holding_syncs: list[str]  # syncs that still hold a key of the person
    records_left: int  # unredacted rows in cdp_sync
    in_graph: int | None  # identifiers still in identity_graph (None: not built)


def status(wh: Warehouse, request_id: str) -> RequestStatus:
    if not wh.relation_exists(P, "deletion_requests"):
        raise PrivacyError(f"no deletion requests in {wh.path} yet (`cdp privacy forget` records them)")
    rows = wh.query(f"select * from {P}.deletion_requests where request_id = ?", [request_id])
    if not rows:
        known = [r["request_id"] for r in _requests(wh)][-5:]
        raise PrivacyError(
            f"no deletion request '{request_id}' (latest: {', '.join(known) or 'none'}; "
            "`cdp privacy status` lists them)"
        )
    holding: list[str] = []
    left = 0
    if wh.relation_exists(SYNC_SCHEMA, "sync_state") and wh.relation_exists(SYNC_SCHEMA, "sync_records"):
        holding = _syncs_with(wh, "sync_state", request_id)
        left = _records_left(wh, request_id)
    in_graph = _in_graph(wh, request_id) if wh.relation_exists(MARTS_SCHEMA, "identity_graph") else None
    return RequestStatus(rows[0], _steps(wh, request_id), holding, left, in_graph)


def list_requests(wh: Warehouse) -> list[dict[str, Any]]:
    if not wh.relation_exists(P, "deletion_requests"):
        return []
    return _requests(wh)


def open_request_ids(wh: Warehouse) -> Sequence[str]:
    if not wh.relation_exists(P, "deletion_requests"):
        return []
    return [r["request_id"] for r in _requests(wh, "open")]
