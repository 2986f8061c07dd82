"""Look-ups over the profile and segment marts, for `cdp profile ...` and `cdp segment ...`.

Segment names, descriptions and owners come from the dbt manifest (the YAML beside the models and
var cdp_yaml_segments, copied into the `declared_segments` model's meta); sizes and history come from
the warehouse.
"""

from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from reverse_etl.dbt import manifest
from reverse_etl.identity import find_identifier
from reverse_etl.sqlcheck import check_where
from reverse_etl.warehouse import MARTS_SCHEMA, Warehouse, WarehouseError

DECLARED_MODEL = "declared_segments"


@dataclass
class Profile:
    customer_id: str
    identifier_type: str
    identifier_value: str
    traits: dict[str, Any]
    identifiers: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    events: list[dict[str, Any]]


@dataclass
class SegmentInfo:
    name: str
    description: str = ""
    owner: str = ""
    title: str = ""
    kind: str = "model"  # model (a file in models/segments) or declared (var cdp_yaml_segments)
    members: int = 0
    holdouts: int = 0


@dataclass
class Preview:
    name: str
    members: int
    holdouts: int
    sample: list[dict[str, Any]]
    history: list[dict[str, Any]] = field(default_factory=list)


def segment_definitions(project: Path) -> dict[str, SegmentInfo]:
    """Every segment the manifest knows: models under models/segments and declared segments."""
    try:
        data = manifest(project)
    except FileNotFoundError as exc:
        raise WarehouseError(str(exc)) from exc
    found: dict[str, SegmentInfo] = {}
    for node in data.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        meta = node.get("config", {}).get("meta", {}) or node.get("meta", {})
        if node.get("name") == DECLARED_MODEL:
            for declared in meta.get("declared_segments", []) or []:
                found[declared["name"]] = SegmentInfo(
                    name=declared["name"],
                    description=declared.get("description", ""),
                    owner=declared.get("owner", ""),
                    title=declared.get("title", ""),
                    kind="declared",
                )
            continue
        segment_meta = meta.get("segment")
        in_folder = str(node.get("original_file_path", "")).startswith("models/segments/")
        if segment_meta is None and not in_folder:
            continue
        segment_meta = segment_meta or {}
        found[node["name"]] = SegmentInfo(
            name=node["name"],
            description=" ".join((node.get("description") or "").split()),
            owner=segment_meta.get("owner", ""),
            title=segment_meta.get("title", ""),
        )
    return found


def _sizes(wh: Warehouse) -> dict[str, tuple[int, int]]:
    members = wh.require(MARTS_SCHEMA, "segment_members")
    rows = wh.query(
        f"select segment_name, count(*) filter (where not is_holdout) as members, "
        f"count(*) filter (where is_holdout) as holdouts from {members} group by segment_name"
    )
    return {r["segment_name"]: (r["members"], r["holdouts"]) for r in rows}


def list_segments(wh: Warehouse, project: Path) -> list[SegmentInfo]:
    """Segments with description, owner and current size (members exclude holdouts). A segment with
    members but no manifest entry (an old build) is listed too, without a description."""
    definitions = segment_definitions(project)
    sizes = _sizes(wh)
    for name in sizes.keys() - definitions.keys():
        definitions[name] = SegmentInfo(name=name, kind="unknown")
    for info in definitions.values():
        info.members, info.holdouts = sizes.get(info.name, (0, 0))
    return sorted(definitions.values(), key=lambda s: s.name)


def _check_segment(wh: Warehouse, name: str, project: Path | None) -> None:
    members = wh.require(MARTS_SCHEMA, "segment_members")
    if wh.scalar(f"select count(*) from {members} where segment_name = ?", [name]):
        return
    known = {r["segment_name"] for r in wh.query(f"select distinct segment_name from {members}")}
    if project is not None:
        with contextlib.suppress(WarehouseError):  # no manifest: the warehouse's names suffice
            known |= segment_definitions(project).keys()
    if name not in known:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise WarehouseError(f"no segment named '{name}'{hint} (known: {', '.join(sorted(known)) or 'none'})")


def preview(
    wh: Warehouse, name: str, *, sample: int = 10, project: Path | None = None, where: str | None = None
) -> Preview:
    """Size, a sample of members and the size after each build (from segment_membership_history).

    `where` narrows the size and the sample to members matching an ad-hoc filter over the columns of
    marts.segment_members; it is checked by reverse_etl.sqlcheck (one read-only boolean expression)
    before it is spliced into the query. The history is of the whole segment."""
    _check_segment(wh, name, project)
    members = wh.require(MARTS_SCHEMA, "segment_members")
    extra = f" and ({check_where(where)})" if where is not None else ""
    try:
        counts = wh.query(
            f"select count(*) filter (where not is_holdout) as members, count(*) filter (where is_holdout) "
            f"as holdouts from {members} where segment_name = ?{extra}",
            [name],
        )[0]
        rows = wh.query(
            f"select customer_id, email, phone, first_name, last_name, country, lifetime_value, orders, "
            f"is_holdout from {members} where segment_name = ?{extra} order by customer_id limit ?",
            [name, sample],
        )
    except duckdb.Error as exc:
        if not extra:
            raise
        columns = ", ".join(c["column_name"] for c in wh.query(f"describe {members}"))
        raise WarehouseError(
            f"--where {where!r} failed on {MARTS_SCHEMA}.segment_members: {str(exc).splitlines()[0]}. "
            f"Its columns are: {columns}."
        ) from exc
    history: list[dict[str, Any]] = []
    if wh.relation_exists(MARTS_SCHEMA, "segment_membership_history"):
        table = f'"{MARTS_SCHEMA}"."segment_membership_history"'
        history = wh.query(
            f"""
            with stays as (select * from {table} where segment_name = ?),
            builds as (
                select entered_at as built_at from stays
                union select exited_at from stays where exited_at is not null
            )
            select
                builds.built_at,
                count(stays.customer_id) filter (
                    where stays.entered_at <= builds.built_at
                    and (stays.exited_at is null or stays.exited_at > builds.built_at)
                ) as members,
                count(stays.customer_id) filter (where stays.entered_at = builds.built_at) as entered,
                count(stays.customer_id) filter (where stays.exited_at = builds.built_at) as exited
            from builds cross join stays
            group by builds.built_at
            order by builds.built_at
            """,
            [name],
        )
    return Preview(name, counts["members"], counts["holdouts"], rows, history)


def overlap(wh: Warehouse, a: str, b: str, project: Path | None = None) -> dict[str, Any]:
    """Members of a, of b, of both (holdouts left out), and the shares that tell whether two segments
    are worth keeping apart."""
    for name in (a, b):
        _check_segment(wh, name, project)
    members = wh.require(MARTS_SCHEMA, "segment_members")
    row = wh.query(
        f"""
        with a as (select distinct customer_id from {members} where segment_name = ? and not is_holdout),
        b as (select distinct customer_id from {members} where segment_name = ? and not is_holdout)
        select
            (select count(*) from a) as a,
            (select count(*) from b) as b,
            (select count(*) from a inner join b on a.customer_id = b.customer_id) as both_
        """,
        [a, b],
    )[0]
    size_a, size_b, both = row["a"], row["b"], row["both_"]
    union = size_a + size_b - both
    return {
        "a": a,
        "b": b,
        "members_a": size_a,
        "members_b": size_b,
        "both": both,
        "only_a": size_a - both,
        "only_b": size_b - both,
        "share_of_a_in_b": both / size_a if size_a else 0.0,
        "share_of_b_in_a": both / size_b if size_b else 0.0,
        "jaccard": both / union if union else 0.0,
    }


def show_profile(
    wh: Warehouse, value: str, identifier_type: str | None = None, *, events: int = 10
) -> Profile:
    """The profile of the customer an identifier belongs to: traits, identifiers, segments (with the
    time the customer entered each) and the latest events."""
    row = find_identifier(wh, value, identifier_type)
    if row is None:
        raise WarehouseError(
            f"no identifier '{value}' in {MARTS_SCHEMA}.identity_graph; check the value "
            "(emails are lower-cased, phones E.164) or pass --type"
        )
    customer_id = row["customer_id"]
    profiles = wh.require(MARTS_SCHEMA, "customer_profiles")
    found = wh.query(f"select * from {profiles} where customer_id = ?", [customer_id])
    if not found:
        raise WarehouseError(f"customer {customer_id} has no profile: rebuild with `cdp build`")
    graph = wh.require(MARTS_SCHEMA, "identity_graph")
    identifiers = wh.query(
        f"select identifier_type, identifier_value, first_seen_at, last_seen_at from {graph} "
        f"where customer_id = ? order by identifier_type, identifier_value",
        [customer_id],
    )
    members = wh.require(MARTS_SCHEMA, "segment_members")
    history_join = ""
    entered = "cast(null as timestamp) as entered_at"
    if wh.relation_exists(MARTS_SCHEMA, "segment_membership_history"):
        history_join = (
            f'left join "{MARTS_SCHEMA}"."segment_membership_history" h on h.segment_name = m.segment_name '
            "and h.customer_id = m.customer_id and h.exited_at is null"
        )
        entered = "h.entered_at"
    segments = wh.query(
        f"select m.segment_name, m.is_holdout, {entered} from {members} m {history_join} "
        f"where m.customer_id = ? order by m.segment_name",
        [customer_id],
    )
    timeline = wh.require(MARTS_SCHEMA, "customer_events")
    recent = wh.query(
        f"select occurred_at, event_type, event_name, page_url, revenue, detail from {timeline} "
        f"where customer_id = ? order by occurred_at desc, event_id desc limit ?",
        [customer_id, events],
    )
    return Profile(
        customer_id=customer_id,
        identifier_type=row["identifier_type"],
        identifier_value=row["identifier_value"],
        traits=found[0],
        identifiers=identifiers,
        segments=segments,
        events=recent,
    )
