{#-
    One row per customer id that changed in a build: merged into another customer, split off part of
    itself, reassigned, or removed (all its identifiers gone). Appended by every build, so syncs can act
    on it (move a person's audience membership from the old id to the new one).

    The previous build's mapping is kept in `identity_graph__previous_build` (written by this model's
    post-hook, after the comparison).
-#}
-- The if/else below chooses between two sets of CTEs, which stay at the left margin like every other CTE.
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    on_schema_change='append_new_columns',
    post_hook=[
        "{{ cdp_replace_table(this.schema ~ '.identity_graph__previous_build',
            'select identifier_key, customer_id from ' ~ ref('identity_graph')) }}",
    ],
) }}

{%- set previous = adapter.get_relation(
    database=this.database, schema=this.schema, identifier='identity_graph__previous_build') %}

with

current_graph as (

    select
        identifier_key,
        customer_id
    from {{ ref('identity_graph') }}

),

{% if previous is not none %}
previous_graph as (

    select
        identifier_key,
        customer_id
    from {{ previous }}

),

pairs as (

    select
        previous_graph.customer_id as old_customer_id,
        current_graph.customer_id as new_customer_id,
        count(*) as identifiers_moved
    from previous_graph
    inner join current_graph on previous_graph.identifier_key = current_graph.identifier_key
    group by previous_graph.customer_id, current_graph.customer_id

),

fan_out as (

    select
        old_customer_id,
        count(*) as new_ids
    from pairs
    group by old_customer_id

),

fan_in as (

    select
        new_customer_id,
        count(*) as old_ids
    from pairs
    group by new_customer_id

),

moved as (

    select
        pairs.old_customer_id,
        pairs.new_customer_id,
        case
            when fan_in.old_ids > 1 then 'merge'
            when fan_out.new_ids > 1 then 'split'
            else 'reassign'
        end as reason,
        pairs.identifiers_moved
    from pairs
    inner join fan_out on pairs.old_customer_id = fan_out.old_customer_id
    inner join fan_in on pairs.new_customer_id = fan_in.new_customer_id
    where pairs.old_customer_id != pairs.new_customer_id

),

removed as (

    select
        previous_graph.customer_id as old_customer_id,
        cast(null as {{ dbt.type_string() }}) as new_customer_id,
        'removed' as reason,
        count(*) as identifiers_moved
    from previous_graph
    where previous_graph.customer_id not in (select pairs.old_customer_id from pairs)
    group by previous_graph.customer_id

),

changes as (

    select * from moved
    union all
    select * from removed

),
{% else %}
changes as (

    select
        cast(null as {{ dbt.type_string() }}) as old_customer_id,
        cast(null as {{ dbt.type_string() }}) as new_customer_id,
        cast(null as {{ dbt.type_string() }}) as reason,
        cast(null as {{ dbt.type_bigint() }}) as identifiers_moved
    from current_graph
    where 1 = 0

),
{% endif %}

final as (

    select
        old_customer_id,
        new_customer_id,
        reason,
        identifiers_moved,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as {{ dbt.type_timestamp() }}) as changed_at,
        '{{ invocation_id }}' as build_id
    from changes

)

select * from final
