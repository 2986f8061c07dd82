{#-
    One row per usable identifier (neither blocklisted nor a hub) with the cluster it belongs to.

    1. Connected components of int_identity_edges by randomised contraction (O(log n) rounds).
    2. never_merge overrides, then each per-type limit in priority order: in a cluster that holds two
       identifiers that must stay apart (two user_ids when the limit is 1), every identifier joins the
       nearest of them (breadth-first from all of them at once; ties go to the smaller key) and the
       links between the resulting parts are cut. The strong identifiers are never dropped; the cut
       links are recorded in `<this>__cut_links` and reported by identity_rejections.

    Scratch tables live in this model's schema under `<this>__*` and are dropped when done.
-#}
-- depends_on: {{ ref('int_identity_edges') }}
-- depends_on: {{ ref('identity_overrides') }}
{{ config(
    materialized='table',
    post_hook=[
        "drop table if exists {{ this.schema }}.{{ this.identifier }}__assign",
        "drop table if exists {{ this.schema }}.{{ this.identifier }}__overrides",
    ],
) }}

{%- set prefix = this.schema ~ '.' ~ this.identifier %}
{%- set cut_links = prefix ~ '__cut_links' %}

{%- if execute %}
    {%- set edges_sql = "select identifier_key_a as node_a, identifier_key_b as node_b from "
        ~ ref('int_identity_edges') %}
    {%- set assign = prefix ~ '__assign' %}
    {%- set cc = cdp_connected_components(edges_sql, prefix, var('cdp_identity_max_rounds'),
        output=assign, node_column='identifier_key', rep_column='cluster_key') %}
    {%- do log('identity: connected components converged in ' ~ cc['rounds'] ~ ' rounds', info=true) %}
    {%- do cdp_scratch_table(cut_links,
        "select cast(null as bigint) as identifier_key_a, cast(null as bigint) as identifier_key_b,
                cast(null as " ~ dbt.type_string() ~ ") as reason where 1 = 0") %}

    {#- The overrides, resolved to identifier keys once (a scratch table: DuckDB 2.0.1 can answer a
        union of two copies of the same join subquery wrongly). -#}
    {%- set overrides = prefix ~ '__overrides' %}
    {%- do cdp_scratch_table(overrides,
        "select o.rule, na.identifier_key as key_a, nb.identifier_key as key_b
         from " ~ ref('identity_overrides') ~ " as o
         inner join " ~ ref('int_identity_nodes') ~ " as na
            on na.identifier_type = o.identifier_type_a and na.identifier_value = o.identifier_value_a
         inner join " ~ ref('int_identity_nodes') ~ " as nb
            on nb.identifier_type = o.identifier_type_b and nb.identifier_value = o.identifier_value_b") %}
    {%- set overrides_sql = "select rule, key_a, key_b from " ~ overrides %}

    {#- never_merge pairs that landed in one cluster: both sides become anchors. -#}
    {%- set never_merge_anchors =
        "select key_a as identifier_key, key_a as anchor_key from (" ~ overrides_sql ~ ") as o where rule = 'never_merge'
         union
         select key_b, key_b from (" ~ overrides_sql ~ ") as o where rule = 'never_merge'" %}
    {%- do cdp_identity_split(prefix, assign, never_merge_anchors, 'never_merge', cut_links) %}

    {#- always_merge pairs count as one identifier for the limits (a manual decision wins). -#}
    {%- set always_groups =
        "select key_a as identifier_key, least(key_a, key_b) as group_key from (" ~ overrides_sql ~ ") as o where rule = 'always_merge'
         union
         select key_b, least(key_a, key_b) from (" ~ overrides_sql ~ ") as o where rule = 'always_merge'" %}
    {%- set limits = var('cdp_identifier_limits', {}) %}
    {%- for identifier_type in var('cdp_identifier_priority') if identifier_type in limits %}
        {%- set anchors =
            "with typed as (
                 select a.identifier_key, a.cluster_key, coalesce(min(g.group_key), a.identifier_key) as anchor_key
                 from " ~ assign ~ " as a
                 inner join " ~ ref('int_identity_nodes') ~ " as n on n.identifier_key = a.identifier_key
                 left join (" ~ always_groups ~ ") as g on g.identifier_key = a.identifier_key
                 where n.identifier_type = '" ~ identifier_type ~ "'
                 group by a.identifier_key, a.cluster_key
             )
             select identifier_key, anchor_key from typed
             where cluster_key in (
                 select cluster_key from typed group by cluster_key
                 having count(distinct anchor_key) > " ~ limits[identifier_type] ~ ")" %}
        {%- do cdp_identity_split(prefix, assign, anchors, 'limit:' ~ identifier_type, cut_links) %}
    {%- endfor %}
{%- endif %}

with

nodes as (

    select * from {{ ref('int_identity_nodes') }}

),

hubs as (

    select * from {{ ref('int_identity_hubs') }}

),

assigned as (

    select * from {{ prefix ~ '__assign' }}

),

final as (

    select
        nodes.identifier_key,
        coalesce(assigned.cluster_key, nodes.identifier_key) as cluster_key
    from nodes
    left join hubs on nodes.identifier_key = hubs.identifier_key
    left join assigned on nodes.identifier_key = assigned.identifier_key
    where
        not nodes.is_blocked
        and hubs.identifier_key is null

)

select * from final
