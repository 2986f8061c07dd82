{#-
    One row per edge used for stitching: links between usable identifiers (neither blocklisted nor a
    hub), plus the always_merge overrides.
-#}

with

links as (

    select * from {{ ref('int_identity_links') }}

),

hubs as (

    select * from {{ ref('int_identity_hubs') }}

),

nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

overrides as (

    select * from {{ ref('identity_overrides') }}

),

linked as (

    select
        links.identifier_key_a,
        links.identifier_key_b,
        'observed' as edge_kind
    from links
    left join hubs as hub_a on hub_a.identifier_key = links.identifier_key_a
    left join hubs as hub_b on hub_b.identifier_key = links.identifier_key_b
    where hub_a.identifier_key is null and hub_b.identifier_key is null

),

forced as (

    select
        least(node_a.identifier_key, node_b.identifier_key) as identifier_key_a,
        greatest(node_a.identifier_key, node_b.identifier_key) as identifier_key_b,
        'always_merge' as edge_kind
    from overrides
    inner join nodes as node_a
        on node_a.identifier_type = overrides.identifier_type_a
        and node_a.identifier_value = overrides.identifier_value_a
        and not node_a.is_blocked
    inner join nodes as node_b
        on node_b.identifier_type = overrides.identifier_type_b
        and node_b.identifier_value = overrides.identifier_value_b
        and not node_b.is_blocked
    where overrides.rule = 'always_merge'
        and node_a.identifier_key <> node_b.identifier_key

),

final as (

    select identifier_key_a, identifier_key_b, edge_kind from linked
    union all
    select identifier_key_a, identifier_key_b, edge_kind from forced

)

select * from final
