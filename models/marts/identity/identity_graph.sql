{#-
    One row per identifier, with the customer it belongs to.

    A customer's id derives from its anchor: the identifier seen first (ties: the stronger type, then
    the smaller value). The same input therefore gives the same ids on a full rebuild; when two
    customers merge, the older one's id survives; when a customer splits, the part that holds the
    original anchor keeps the id.
-#}

with

nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

clusters as (

    select * from {{ ref('int_identity_clusters') }}

),

members as (

    select
        clusters.cluster_key,
        nodes.identifier_key,
        nodes.identifier_type,
        nodes.identifier_value,
        nodes.identifier_rank,
        nodes.first_seen_at,
        nodes.last_seen_at,
        nodes.observation_count,
        nodes.sources
    from clusters
    inner join nodes on clusters.identifier_key = nodes.identifier_key

),

ranked as (

    select
        members.*,
        row_number() over (
            partition by members.cluster_key
            order by members.first_seen_at, members.identifier_rank, members.identifier_type, members.identifier_value
        ) as anchor_order
    from members

),

anchors as (

    select
        cluster_key,
        identifier_type as anchor_type,
        identifier_value as anchor_value
    from ranked
    where anchor_order = 1

),

final as (

    select
        'cus_' || substr({{ dbt.hash("anchors.anchor_type || ':' || anchors.anchor_value") }}, 1, 20) as customer_id,
        members.identifier_type,
        members.identifier_value,
        members.identifier_key,
        members.first_seen_at,
        members.last_seen_at,
        members.observation_count,
        members.sources,
        anchors.anchor_type,
        anchors.anchor_value,
        members.identifier_type = anchors.anchor_type
        and members.identifier_value = anchors.anchor_value as is_anchor
    from members
    inner join anchors on members.cluster_key = anchors.cluster_key

)

select * from final
