{#-
    One row per identifier or link excluded from stitching, with the reason: blocklisted junk, hubs
    (shared devices, kiosks, store ids), and links cut by never_merge overrides or per-type limits.
-#}
-- depends_on: {{ ref('int_identity_clusters') }}

with

nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

hubs as (

    select * from {{ ref('int_identity_hubs') }}

),

cut_links as (

    select * from {{ ref('int_identity_clusters').schema }}.{{ ref('int_identity_clusters').identifier }}__cut_links

),

links as (

    select * from {{ ref('int_identity_links') }}

),

blocked as (

    select
        'blocklist' as reason,
        identifier_type,
        identifier_value,
        cast(null as {{ dbt.type_string() }}) as linked_identifier_type,
        cast(null as {{ dbt.type_string() }}) as linked_identifier_value,
        block_reason as detail,
        observation_count as affected_observations
    from nodes
    where is_blocked

),

hub_rows as (

    select
        'hub' as reason,
        hubs.identifier_type,
        hubs.identifier_value,
        cast(null as {{ dbt.type_string() }}) as linked_identifier_type,
        cast(null as {{ dbt.type_string() }}) as linked_identifier_value,
        'linked to ' || cast(hubs.stronger_identifier_count as {{ dbt.type_string() }})
        || ' distinct stronger identifiers (' || hubs.stronger_identifier_types || '); threshold '
        || cast(hubs.hub_threshold as {{ dbt.type_string() }}) as detail,
        nodes.observation_count as affected_observations
    from hubs
    inner join nodes on hubs.identifier_key = nodes.identifier_key

),

cut_rows as (

    {#- Report the weaker side of each cut link as the rejected identifier. -#}
    select
        cut_links.reason,
        case
            when node_a.identifier_rank >= node_b.identifier_rank then node_a.identifier_type
            else node_b.identifier_type
        end as identifier_type,
        case
            when node_a.identifier_rank >= node_b.identifier_rank then node_a.identifier_value
            else node_b.identifier_value
        end as identifier_value,
        case
            when node_a.identifier_rank >= node_b.identifier_rank then node_b.identifier_type
            else node_a.identifier_type
        end as linked_identifier_type,
        case
            when node_a.identifier_rank >= node_b.identifier_rank then node_b.identifier_value
            else node_a.identifier_value
        end as linked_identifier_value,
        'link cut, seen on ' || coalesce(links.example_record, 'an override') as detail,
        coalesce(links.record_count, 0) as affected_observations
    from cut_links
    inner join nodes as node_a on cut_links.identifier_key_a = node_a.identifier_key
    inner join nodes as node_b on cut_links.identifier_key_b = node_b.identifier_key
    left join links
        on
            cut_links.identifier_key_a = links.identifier_key_a
            and cut_links.identifier_key_b = links.identifier_key_b

),

unioned as (

    select * from blocked
    union all
    select * from hub_rows
    union all
    select * from cut_rows

),

final as (

    select
        unioned.*,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as {{ dbt.type_timestamp() }}) as rejected_at
    from unioned

)

select * from final
