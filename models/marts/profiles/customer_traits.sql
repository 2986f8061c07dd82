{#-
    One row per customer: the golden record and the computed traits segments are written on.
    The golden record comes from int_golden_records, event aggregates (core and declared traits) from
    int_computed_traits, one pass over customer_events; customer_profiles adds the segments each
    customer is in.
-#}
{%- set survivorship = var('cdp_survivorship') %}
{%- set user_traits = cdp_user_computed_traits() %}
{%- set rfm_orderings = [
    ('recency_score', 'days_since_last_order desc'),
    ('frequency_score', 'orders'),
    ('monetary_score', 'lifetime_value')] %}

with

graph as (

    select * from {{ ref('identity_graph') }}

),

computed as (

    select * from {{ ref('int_computed_traits') }}

),

sessions as (

    select * from {{ ref('customer_sessions') }}

),

golden as (

    select * from {{ ref('int_golden_records') }}

),

customers as (

    select
        customer_id,
        min(first_seen_at) as first_seen_at,
        count(*) as identifier_count,
        count(case when identifier_type = 'user_id' then 1 end) > 0 as is_registered,
        max(case when identifier_type = 'user_id' then identifier_value end) as user_id,
        max(case when identifier_type = 'crm_id' then identifier_value end) as crm_id
    from graph
    group by customer_id

),

session_counts as (

    select
        customer_id,
        count(*) as sessions
    from sessions
    where customer_id is not null
    group by customer_id

),

joined as (

    select
        customers.customer_id,
        customers.user_id,
        customers.crm_id,
        customers.is_registered,
        customers.identifier_count,
        {%- for attribute in survivorship %}
            golden.{{ attribute }},
        {%- endfor %}
        least(customers.first_seen_at, coalesce(computed.first_event_at, customers.first_seen_at)) as first_seen_at,
        computed.last_seen_at,
        coalesce(session_counts.sessions, 0) as sessions,
        coalesce(computed.page_views, 0) as page_views,
        coalesce(computed.products_added, 0) as products_added,
        computed.last_cart_activity_at,
        coalesce(computed.orders, 0) as orders,
        coalesce(computed.refunded_orders, 0) as refunded_orders,
        coalesce(computed.lifetime_value, 0) as lifetime_value,
        case when computed.orders > 0 then computed.lifetime_value / computed.orders end as average_order_value,
        computed.first_order_at,
        computed.last_order_at,
        coalesce(computed.emails_delivered, 0) as emails_delivered,
        coalesce(computed.email_opens, 0) as email_opens,
        coalesce(computed.email_clicks, 0) as email_clicks,
        computed.last_email_open_at,
        coalesce(computed.email_bounces, 0) > 0 as has_email_bounced,
        coalesce(computed.email_unsubscribes, 0) > 0 as has_unsubscribed,
        {%- for purpose in var('cdp_consent_purposes') %}
            coalesce(computed.consent_{{ purpose }}_change = 'consent_{{ purpose }}_granted', false)
                as consent_{{ purpose }},
        {%- endfor %}
        {%- for trait in user_traits %}
            {%- set default = cdp_trait_default(trait) %}
            {%- if default is not none %}
                coalesce(computed.{{ trait.name }}, {{ default }}) as {{ trait.name }},
            {%- else %}
        computed.{{ trait.name }},
        {%- endif %}
        {%- endfor %}
        golden.crm_lifecycle_stage,
        {{ cdp_as_of() }} as as_of
    from customers
    left join golden on customers.customer_id = golden.customer_id
    left join computed on customers.customer_id = computed.customer_id
    left join session_counts on customers.customer_id = session_counts.customer_id

),

scored as (

    select
        joined.*,
        {{ dbt.datediff('last_order_at', 'as_of', 'day') }} as days_since_last_order,
        {{ dbt.datediff('last_seen_at', 'as_of', 'day') }} as days_since_last_seen,
        case
            when
                joined.orders >= 2
                then {{ dbt.datediff('first_order_at', 'last_order_at', 'day') }} * 1.0 / (joined.orders - 1)
        end as days_between_orders
    from joined

),

buyers as (

    select
        customer_id,
        days_since_last_order,
        orders,
        lifetime_value,
        count(*) over () as buyer_count
    from scored
    where orders > 0

),

rfm_scores as (
    {#- RFM: each score is the buyer's quintile (1 to 5) among customers with orders: recency (the most
        recent order scores 5), frequency (orders) and monetary value (lifetime_value). Equal values
        share a score (a quintile starts where the first of its ties ranks), so every rebuild and
        engine gives the same scores; ranked on narrow rows, then joined back. #}
    select
        {%- for score, ordering in rfm_orderings %}
            cast(
                1 + floor(5.0 * (rank() over (order by {{ ordering }}) - 1) / buyer_count)
                as {{ dbt.type_int() }}
            ) as {{ score }},
        {%- endfor %}
        customer_id
    from buyers

),

rfm as (

    select
        scored.*,
        rfm_scores.recency_score,
        rfm_scores.frequency_score,
        rfm_scores.monetary_score
    from scored
    left join rfm_scores on scored.customer_id = rfm_scores.customer_id

),

final as (

    select
        rfm.*,
        case
            when rfm.orders > 0 then
                cast(rfm.recency_score as {{ dbt.type_string() }})
                || cast(rfm.frequency_score as {{ dbt.type_string() }})
                || cast(rfm.monetary_score as {{ dbt.type_string() }})
        end as rfm_segment,
        coalesce(
            rfm.crm_lifecycle_stage,
            case
                when rfm.orders > 0 and rfm.days_since_last_order > 180 then 'lapsed_customer'
                when rfm.orders > 1 then 'repeat_customer'
                when rfm.orders = 1 then 'customer'
                when rfm.is_registered or rfm.email is not null then 'lead'
                else 'visitor'
            end
        ) as lifecycle_stage,
        {#- Churn risk: how overdue the next order is against the customer's own rhythm (or 90 days),
            raised when email engagement has stopped. Explained in churn_risk_reason. -#}
        case
            when rfm.orders = 0 then null
            else least(1.0, round(
                0.7 * least(1.0, rfm.days_since_last_order * 1.0 / (2 * coalesce(rfm.days_between_orders, 90) + 1))
                + 0.3 * case
                    when
                        rfm.last_email_open_at is null
                        or {{ dbt.datediff('last_email_open_at', 'as_of', 'day') }} > 60 then 1
                    else 0
                end,
                3
            ))
        end as churn_risk_score,
        case
            when rfm.orders = 0 then 'no orders'
            else
                cast(rfm.days_since_last_order as {{ dbt.type_string() }}) || ' days since last order against a usual '
                || cast(
                    cast(round(coalesce(rfm.days_between_orders, 90), 0) as {{ dbt.type_int() }})
                    as {{ dbt.type_string() }}
                )
                || ' between orders'
                || case
                    when
                        rfm.last_email_open_at is null
                        or {{ dbt.datediff('last_email_open_at', 'as_of', 'day') }} > 60
                        then '; no email opened in 60 days'
                    else ''
                end
        end as churn_risk_reason
    from rfm

)

select * from final
