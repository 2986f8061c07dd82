{#-
    One row per hub: an identifier linked to more distinct stronger identifiers than its type's
    threshold (a kiosk, a shared device, a store-wide id). Hubs are not used for merging. Detected from
    the data; nobody has to list them.
-#}

with

links as (

    select * from {{ ref('int_identity_links') }}

),

nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

directed as (

    select
        identifier_key_a as identifier_key,
        identifier_key_b as linked_key
    from links
    union all
    select
        identifier_key_b as identifier_key,
        identifier_key_a as linked_key
    from links

),

stronger_links as (

    select
        node.identifier_key,
        node.identifier_type,
        node.identifier_value,
        count(distinct linked.identifier_key) as stronger_identifier_count,
        {{ cdp_string_agg_distinct('linked.identifier_type') }} as stronger_identifier_types
    from directed
    inner join nodes as node on directed.identifier_key = node.identifier_key
    inner join nodes as linked on directed.linked_key = linked.identifier_key
    where linked.identifier_rank < node.identifier_rank
    group by node.identifier_key, node.identifier_type, node.identifier_value

),

final as (

    select
        identifier_key,
        identifier_type,
        identifier_value,
        stronger_identifier_count,
        stronger_identifier_types,
        {{ cdp_hub_threshold('identifier_type') }} as hub_threshold
    from stronger_links
    where stronger_identifier_count > {{ cdp_hub_threshold('identifier_type') }}

)

select * from final
