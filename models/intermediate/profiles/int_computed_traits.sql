{#-
    One row per customer with events: every computed trait (the core ones customer_traits needs and
    those declared in var cdp_computed_traits) in a single group-by pass over customer_events. The
    trait expressions come from macros/profiles/computed_traits.sql.
-#}
{%- set traits = cdp_computed_traits() %}

with

events as (

    select * from {{ ref('customer_events') }}

),

reference_time as (

    select {{ cdp_as_of() }} as as_of

),

final as (

    select
        events.customer_id,
    {%- for trait in traits %}
        {{ cdp_trait_expression(trait) }} as {{ trait.name }}{{ "," if not loop.last }}
    {%- endfor %}
    from events
    cross join reference_time
    where events.customer_id is not null
    group by events.customer_id, reference_time.as_of

)

select * from final
