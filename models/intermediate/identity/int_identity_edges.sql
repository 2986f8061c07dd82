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
    left join hubs as hub_a on links.identifier_key_a = hub_a.identifier_key
    left join hubs as hub_b on links.identifier_key_b = hub_b.identifier_key
    where hub_a.identifier_key is null and hub_b.identifier_key is null

),

forced as (

    select
        least(node_a.identifier_key, node_b.identifier_key) as identifier_key_a,
        greatest(node_a.identifier_key, node_b.identifier_key) as identifier_key_b,
        'always_merge' as edge_kind
    from overrides
    inner join nodes as node_a
        on
            overrides.identifier_type_a = node_a.identifier_type
            and overrides.identifier_value_a = node_a.identifier_value
            and not node_a.is_blocked
    inner join nodes as node_b
        on
            overrides.identifier_type_b = node_b.identifier_type
            and overrides.identifier_value_b = node_b.identifier_value
            and not node_b.is_blocked
    where
        overrides.rule = 'always_merge'
        and node_a.identifier_key != node_b.identifier_key

),

final as (

    select
        identifier_key_a,
        identifier_key_b,
        edge_kind
    from linked
    union all
    select
        identifier_key_a,
        identifier_key_b,
        edge_kind
    from forced

)

select * from final
