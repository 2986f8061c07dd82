{#-
    One row per customer with events: every computed trait (the core ones customer_traits needs and
    those declared in var cdp_computed_traits) in a single group-by pass over customer_events. The
    trait expressions come from macros/profiles/computed_traits.sql.

    Incremental, per customer. Each row keeps how many events the customer has and the sum of their
    fingerprints (customer_events.event_fingerprint). A build recomputes only the customers whose
    count or sum differs from the stored one (new, late, changed, re-attributed or erased events), plus,
    when as_of moved, those with an event that entered or left a trait's time window. A customer left
    with no events sends a row with no event_count, which only deletes its row (strategy
    cdp_replace_keys). The as_of and the trait definitions of the last build are kept in
    int_computed_traits__state; when the definitions change (or the state is missing) every customer is
    recomputed. A full refresh gives the same table.
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
    {#- Windows only move when as_of did; then the events that crossed an edge are counted. #}
    {%- set follow_windows = windows and previous.as_of_moved and not previous.recompute_all %}
    {%- set window_condition = 'current_customers.window_events > 0' if follow_windows else none %}
    {%- set recompute_all = previous.recompute_all %}
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

    current_customers as (  -- noqa: ST03

        select
            events.customer_id,
            {%- if follow_windows %}
                {#- as_of moved: an event between the old and the new as_of, or between the old and the
                    new start of a window, changes that window's traits. #}
                count(
                    case
                        when
                            (
                                events.occurred_at > least(reference_time.as_of, {{ previous.as_of }})
                                and events.occurred_at <= greatest(reference_time.as_of, {{ previous.as_of }})
                            )
                            {%- for days in windows %}
                                or (
                                    events.occurred_at
                                    > {{ dbt.dateadd('day', -days, 'least(reference_time.as_of, ' ~ previous.as_of ~ ')') }}
                                    and events.occurred_at
                                    <= {{ dbt.dateadd('day', -days, 'greatest(reference_time.as_of, ' ~ previous.as_of ~ ')') }}
                                )
                            {%- endfor %}
                            then 1
                    end
                ) as window_events,
            {%- endif %}
            count(*) as event_count,
            cast(sum(events.event_fingerprint) as {{ dbt.type_bigint() }}) as event_fingerprint
        from events
        {%- if follow_windows %}
            cross join reference_time
        {%- endif %}
        group by events.customer_id

    ),

    stored as (  -- noqa: ST03

        select * from {{ this }}

    ),

    changed_customers as (
        {#- Customers whose events differ from those their stored row was computed from, those with an
            event that crossed a window's edge, and those gone from customer_events (they get a row
            with no event_count: their stored row goes). current_customers and stored are read inside
            cdp_changed_keys (hence their noqa). -#}
        select changed.customer_id
        from ({{ cdp_changed_keys(
            'current_customers', 'stored', 'customer_id', 'event_count', window_condition, recompute_all) }}) as changed

    ),

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
