{#-
    One row per customer with events: every computed trait (the core ones customer_traits needs and
    those declared in var cdp_computed_traits) in a single group-by pass over customer_events. The
    trait expressions come from macros/profiles/computed_traits.sql.

    Incremental, per customer. A build recomputes only the customers with new, late, changed,
    re-attributed or erased events, plus, when as_of moved, those with an event that entered or left a
    trait's time window. customer_events names the first ones: the customers of the rows its latest
    build wrote, before and after (cdp_events_changed_since). When it cannot (a full refresh or a
    skipped build of customer_events, var cdp_verify_incremental), each row's event count and
    fingerprint sum (customer_events.event_fingerprint) is compared with customer_events'. A customer
    left with no events sends a row with no event_count, which only deletes its row (strategy
    cdp_replace_keys). The as_of, the trait definitions and the customer_events build of the last build
    are kept in int_computed_traits__state; when the definitions change (or the state is missing) every
    customer is recomputed. A full refresh gives the same table.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdp_replace_keys',
    unique_key='customer_id',
    cdp_tombstone_column='event_count',
    on_schema_change=('fail' if target.type == 'spark' else 'sync_all_columns'),
    post_hook=["{{ cdp_computed_traits_save_state(this) }}"],
) }}

{%- set traits = cdp_computed_traits() %}
{%- set windows = cdp_trait_windows(traits) %}
{%- set previous = none %}
{%- set follow_windows = false %}
{%- if is_incremental() %}
    {%- set previous = cdp_computed_traits_previous_build(this) %}
    {#- Windows only move when as_of did; then the customers with an event that crossed an edge are found. #}
    {%- set follow_windows = windows and previous.as_of_moved and not previous.recompute_all %}
    {%- set changed_since = none %}
    {%- if not previous.recompute_all %}
        {%- set changed_since = cdp_events_changed_since(this, ref('customer_events')) %}
    {%- endif %}
{%- endif %}

with

events as (

    select * from {{ ref('customer_events') }}
    where customer_id is not null

),

reference_time as (

    select {{ cdp_as_of() }} as as_of

),

{%- if previous is not none %}
    {#- customer_events is read by name below, not through `events`: a CTE read twice is materialised
        whole. #}
    {%- if follow_windows %}

        crossed_windows as (
            {#- as_of moved: an event between the old and the new as_of, or between the old and the new
                start of a window, changes that window's traits. #}
            select distinct windowed.customer_id
            from {{ ref('customer_events') }} as windowed
            cross join reference_time
            where
                windowed.customer_id is not null
                and (
                    (
                        windowed.occurred_at > least(reference_time.as_of, {{ previous.as_of }})
                        and windowed.occurred_at <= greatest(reference_time.as_of, {{ previous.as_of }})
                    )
                    {%- for days in windows %}
                        or (
                            windowed.occurred_at
                            > {{ dbt.dateadd('day', -days, 'least(reference_time.as_of, ' ~ previous.as_of ~ ')') }}
                            and windowed.occurred_at
                            <= {{ dbt.dateadd('day', -days, 'greatest(reference_time.as_of, ' ~ previous.as_of ~ ')') }}
                        )
                    {%- endfor %}
                )

        ),
    {%- endif %}
    {%- if changed_since is not none %}

        event_changes as (
            {#- The rows customer_events wrote since this table was built: the customer each event belongs
                to now and the one it belonged to before. -#}
            select
                written.customer_id,
                written.previous_visitor_id
            from {{ ref('customer_events') }} as written
            where written.written_in_build > {{ changed_since }}

        ),

        changed_customers as (
            {#- previous_visitor_id is a customer id or a device's visitor id; the latter matches no
                customer, so its row (with no event_count) deletes nothing. -#}
            select customer_id from event_changes where customer_id is not null
            union
            select previous_visitor_id as customer_id from event_changes where previous_visitor_id is not null
            {%- if follow_windows %}
                union
                select customer_id from crossed_windows
            {%- endif %}

        ),
    {%- else %}

        current_customers as (  -- noqa: ST03

            select
                counted.customer_id,
                count(*) as event_count,
                cast(sum(counted.event_fingerprint) as {{ dbt.type_bigint() }}) as event_fingerprint
            from {{ ref('customer_events') }} as counted
            where counted.customer_id is not null
            group by counted.customer_id

        ),

        stored as (  -- noqa: ST03

            select * from {{ this }}

        ),

        changed_customers as (
            {#- Customers whose events differ from those their stored row was computed from, those with an
                event that crossed a window's edge, and those gone from customer_events (they get a row
                with no event_count: their stored row goes). current_customers and stored are read
                inside cdp_changed_keys (hence their noqa). -#}
            select changed.customer_id
            from ({{ cdp_changed_keys(
                'current_customers', 'stored', 'customer_id', 'event_count', previous.recompute_all) }}) as changed
            {%- if follow_windows %}
                union
                select customer_id from crossed_windows
            {%- endif %}

        ),
    {%- endif %}

    to_compute as (

        select events.*
        from events
        inner join changed_customers on events.customer_id = changed_customers.customer_id

    ),
{%- else %}

    to_compute as (

        select * from events

    ),
{%- endif %}

computed as (

    select
        to_compute.customer_id,
        {%- for trait in traits %}
            {{ cdp_trait_expression(trait) }} as {{ trait.name }},
        {%- endfor %}
        count(*) as event_count,
        cast(sum(to_compute.event_fingerprint) as {{ dbt.type_bigint() }}) as event_fingerprint
    from to_compute
    cross join reference_time
    group by to_compute.customer_id, reference_time.as_of

),

final as (
    {%- if previous is not none %}
        {#- Every changed customer, with nulls (event_count too) for one that has no events left. #}
        select
            changed_customers.customer_id,
            {%- for trait in traits %}
                computed.{{ trait.name }},
            {%- endfor %}
            computed.event_count,
            computed.event_fingerprint
        from changed_customers
        left join computed on changed_customers.customer_id = computed.customer_id
    {%- else %}
        select * from computed
    {%- endif %}

)

select * from final
