"""Pairwise precision and recall of identity resolution against the generator's ground truth.

Over identifiers: a pair of identifiers is "predicted" when identity_graph puts them on one customer and
"true" when the ground truth gives them to one person. Recall is measured against what the data makes
linkable: pairs of one person's identifiers joined by a chain of records that carry two of that
person's identifiers at once (a device that browsed but never logged in cannot be linked by any
deterministic rule). Shared identifiers (kiosks) and identifiers the truth gives to several people are
left out of both sides. Needs SciPy (the `dev` extra) for the linkable components.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reverse_etl.warehouse import Warehouse

# Ground-truth identifier types that the identity vars call differently.
TRUTH_TYPES = {"crm_contact_id": "crm_id"}


@dataclass(frozen=True)
class Accuracy:
    identifiers: int
    predicted_pairs: int
    true_pairs: int
    linkable_pairs: int
    correct_pairs: int
    correct_linkable_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        """Share of the linkable pairs that were linked."""
        return self.correct_linkable_pairs / self.linkable_pairs if self.linkable_pairs else 1.0

    @property
    def recall_of_all(self) -> float:
        """Share of all true pairs (linkable or not) that were linked."""
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0


def _pairs(column: str) -> str:
    return f"sum({column} * ({column} - 1) / 2)"


def measure(wh: Warehouse) -> Accuracy:
    case = " ".join(f"when '{k}' then '{v}'" for k, v in TRUTH_TYPES.items())
    wh.execute(
        f"""
        create or replace temp table acc_truth as
        with t as (
            select case identifier_type {case} else identifier_type end as identifier_type,
                   identifier_value, person_id, is_shared
            from ground_truth.identifiers
        ),
        clean as (
            select identifier_type, identifier_value
            from t group by identifier_type, identifier_value
            having count(distinct person_id) = 1 and not bool_or(is_shared)
        )
        select row_number() over () - 1 as idx, t.identifier_type, t.identifier_value, any_value(t.person_id) as person_id
        from t join clean using (identifier_type, identifier_value)
        group by t.identifier_type, t.identifier_value
        """
    )
    wh.execute(
        """
        create or replace temp table acc_joined as
        select t.idx, t.person_id, g.customer_id
        from acc_truth t
        left join marts.identity_graph g
            on g.identifier_type = t.identifier_type and g.identifier_value = t.identifier_value
        """
    )
    # Linkable components: records carrying two identifiers of the same person.
    edges = wh.con.sql(
        """
        with obs as (
            select distinct o.source_model, o.record_key, t.idx, t.person_id
            from intermediate.int_identifiers o
            join acc_truth t on t.identifier_type = o.identifier_type and t.identifier_value = o.identifier_value
        )
        select a.idx as a, b.idx as b
        from obs a join obs b
            on a.source_model = b.source_model and a.record_key = b.record_key
            and a.person_id = b.person_id and a.idx < b.idx
        """
    ).to_arrow_table()
    n = int(wh.scalar("select count(*) from acc_truth"))
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = edges.column("a").to_numpy()
    b = edges.column("b").to_numpy()
    matrix = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(matrix, directed=False)
    import pyarrow as pa

    wh.con.register("acc_labels_df", pa.table({"idx": np.arange(n), "component": labels}))
    wh.execute("create or replace temp table acc_labels as select * from acc_labels_df")
    wh.con.unregister("acc_labels_df")
    row = wh.query(
        f"""
        with j as (select j.*, l.component from acc_joined j join acc_labels l using (idx)),
        by_customer as (select count(*) as n from j where customer_id is not null group by customer_id),
        by_person as (select count(*) as n from j group by person_id),
        by_component as (select count(*) as n from j group by component),
        by_customer_person as (select count(*) as n from j where customer_id is not null group by customer_id, person_id),
        by_customer_component as (select count(*) as n from j where customer_id is not null group by customer_id, component)
        select
            (select count(*) from j) as identifiers,
            (select {_pairs("n")} from by_customer) as predicted_pairs,
            (select {_pairs("n")} from by_person) as true_pairs,
            (select {_pairs("n")} from by_component) as linkable_pairs,
            (select {_pairs("n")} from by_customer_person) as correct_pairs,
            (select {_pairs("n")} from by_customer_component) as correct_linkable_pairs
        """
    )[0]
    return Accuracy(**{k: int(v or 0) for k, v in row.items()})
