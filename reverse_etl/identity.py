"""Look-ups over the identity marts, for `cdp identity explain` and `cdp identity stats`."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from reverse_etl.warehouse import MARTS_SCHEMA, Warehouse, WarehouseError

INTERMEDIATE_SCHEMA = "intermediate"


@dataclass
class Link:
    from_type: str
    from_value: str
    to_type: str
    to_value: str
    record_count: int
    example_record: str


@dataclass
class Explanation:
    customer_id: str
    identifier_type: str
    identifier_value: str
    identifiers: list[dict[str, Any]]
    paths: dict[tuple[str, str], list[Link]] = field(default_factory=dict)
    rejections: list[dict[str, Any]] = field(default_factory=list)


def find_identifier(wh: Warehouse, value: str, identifier_type: str | None = None) -> dict[str, Any] | None:
    """The identity_graph row of an identifier; emails match case-insensitively, phones by digits."""
    graph = wh.require(MARTS_SCHEMA, "identity_graph")
    candidates = [value.strip(), value.strip().lower()]
    digits = "".join(ch for ch in value if ch.isdigit())
    type_filter = "and identifier_type = ?" if identifier_type else ""
    for candidate in candidates:
        params: list[Any] = [candidate] + ([identifier_type] if identifier_type else [])
        rows = wh.query(
            f"select * from {graph} where identifier_value = ? {type_filter} order by identifier_type limit 1",
            params,
        )
        if rows:
            return rows[0]
    if len(digits) >= 7:
        rows = wh.query(
            f"select * from {graph} where identifier_type = 'phone' and identifier_value like ? limit 1",
            [f"%{digits[-9:]}"],
        )
        if rows:
            return rows[0]
    return None


def explain(wh: Warehouse, value: str, identifier_type: str | None = None) -> Explanation:
    """The customer of an identifier, all its identifiers, and the chain of observed links from the
    looked-up identifier to each of them (shortest path, each link with an example source record)."""
    row = find_identifier(wh, value, identifier_type)
    graph = wh.require(MARTS_SCHEMA, "identity_graph")
    rejections_table = wh.require(MARTS_SCHEMA, "identity_rejections")
    if row is None:
        rejected = wh.query(
            f"select * from {rejections_table} where identifier_value in (?, ?) order by reason",
            [value.strip(), value.strip().lower()],
        )
        if rejected:
            first = rejected[0]
            raise WarehouseError(
                f"{first['identifier_type']} '{first['identifier_value']}' is not on any customer: "
                f"rejected ({first['reason']}: {first['detail']})"
            )
        raise WarehouseError(f"no identifier '{value}' in {graph}; check the value (emails are lower-cased)")
    customer_id = row["customer_id"]
    identifiers = wh.query(
        f"select identifier_type, identifier_value, identifier_key, first_seen_at, last_seen_at, "
        f"observation_count, sources, is_anchor from {graph} where customer_id = ? "
        f"order by first_seen_at, identifier_type, identifier_value",
        [customer_id],
    )
    links_table = wh.require(INTERMEDIATE_SCHEMA, "int_identity_links")
    edges_table = wh.require(INTERMEDIATE_SCHEMA, "int_identity_edges")
    links = wh.query(
        f"""
        select g_a.identifier_type as a_type, g_a.identifier_value as a_value,
               g_b.identifier_type as b_type, g_b.identifier_value as b_value,
               coalesce(l.record_count, 0) as record_count,
               coalesce(l.example_record, 'override: ' || e.edge_kind) as example_record
        from {edges_table} as e
        inner join {graph} as g_a on g_a.identifier_key = e.identifier_key_a and g_a.customer_id = ?
        inner join {graph} as g_b on g_b.identifier_key = e.identifier_key_b and g_b.customer_id = ?
        left join {links_table} as l
            on l.identifier_key_a = e.identifier_key_a and l.identifier_key_b = e.identifier_key_b
        """,
        [customer_id, customer_id],
    )
    adjacency: dict[tuple[str, str], list[Link]] = {}
    for link in links:
        a, b = (link["a_type"], link["a_value"]), (link["b_type"], link["b_value"])
        adjacency.setdefault(a, []).append(Link(*a, *b, link["record_count"], link["example_record"]))
        adjacency.setdefault(b, []).append(Link(*b, *a, link["record_count"], link["example_record"]))
    start = (row["identifier_type"], row["identifier_value"])
    paths: dict[tuple[str, str], list[Link]] = {start: []}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for link in sorted(adjacency.get(node, []), key=lambda x: (-x.record_count, x.to_type, x.to_value)):
            target = (link.to_type, link.to_value)
            if target not in paths:
                paths[target] = [*paths[node], link]
                queue.append(target)
    rejections = wh.query(
        f"select reason, identifier_type, identifier_value, linked_identifier_type, linked_identifier_value, "
        f"detail from {rejections_table} r where exists (select 1 from {graph} g where g.customer_id = ? "
        f"and ((g.identifier_type = r.linked_identifier_type and g.identifier_value = r.linked_identifier_value) "
        f"or (g.identifier_type = r.identifier_type and g.identifier_value = r.identifier_value)))",
        [customer_id],
    )
    return Explanation(
        customer_id=customer_id,
        identifier_type=row["identifier_type"],
        identifier_value=row["identifier_value"],
        identifiers=identifiers,
        paths=paths,
        rejections=rejections,
    )


SIZE_BUCKETS = [(1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, None)]


def stats(wh: Warehouse) -> dict[str, Any]:
    """Cluster-size histogram, identifiers per customer by type, rejections and the largest hubs."""
    graph = wh.require(MARTS_SCHEMA, "identity_graph")
    rejections = wh.require(MARTS_SCHEMA, "identity_rejections")
    totals = wh.query(
        f"select count(distinct customer_id) as customers, count(*) as identifiers from {graph}"
    )[0]
    sizes = wh.query(
        f"select size, count(*) as customers from (select customer_id, count(*) as size from {graph} "
        f"group by customer_id) group by size order by size"
    )
    histogram = []
    for low, high in SIZE_BUCKETS:
        n = sum(r["customers"] for r in sizes if r["size"] >= low and (high is None or r["size"] <= high))
        label = f"{low}" if low == high else (f"{low}+" if high is None else f"{low}-{high}")
        histogram.append({"identifiers": label, "customers": n})
    per_type = wh.query(
        f"""
        select identifier_type,
               count(*) as identifiers,
               count(distinct customer_id) as customers_with_type,
               round(count(*) * 1.0 / count(distinct customer_id), 2) as avg_per_customer,
               max(n) as max_per_customer
        from (select identifier_type, customer_id, count(*) over (partition by customer_id, identifier_type) as n
              from {graph})
        group by identifier_type order by identifier_type
        """
    )
    by_reason = wh.query(
        f"select reason, count(*) as rejections, sum(affected_observations) as observations "
        f"from {rejections} group by reason order by rejections desc"
    )
    hubs = wh.query(
        f"select identifier_type, identifier_value, detail, affected_observations from {rejections} "
        f"where reason = 'hub' order by affected_observations desc limit 10"
    )
    largest = sizes[-1]["size"] if sizes else 0
    return {
        "customers": totals["customers"],
        "identifiers": totals["identifiers"],
        "largest_cluster": largest,
        "histogram": histogram,
        "per_type": per_type,
        "rejections": by_reason,
        "hubs": hubs,
    }
