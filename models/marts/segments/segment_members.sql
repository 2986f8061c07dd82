{#-
    One row per segment and customer, with what syncs need: normalised identifiers and consent.
    Customers on the suppression list are left out of every segment; var cdp_segment_holdouts holds a
    deterministic share of a segment out (is_holdout), by a hash of the customer id.
-#}

with

{% for segment in var('cdp_segments') %}
{{ segment }} as (

    select customer_id from {{ ref(segment) }}

),

{% endfor %}
traits as (

    select * from {{ ref('customer_traits') }}

),

graph as (

    select * from {{ ref('identity_graph') }}

),

suppression as (

    select * from {{ ref('suppression_list') }}

),

suppressed as (

    select distinct graph.customer_id
    from suppression
    inner join graph
        on graph.identifier_type = suppression.identifier_type
        and graph.identifier_value = suppression.identifier_value

),

memberships as (

    {%- for segment in var('cdp_segments') %}
    select distinct '{{ segment }}' as segment_name, customer_id from {{ segment }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select
        memberships.segment_name || ':' || memberships.customer_id as segment_member_id,
        memberships.segment_name,
        memberships.customer_id,
        traits.user_id,
        traits.crm_id,
        traits.email,
        traits.phone,
        traits.first_name,
        traits.last_name,
        traits.country,
        traits.lifetime_value,
        traits.orders,
        {%- for purpose in var('cdp_consent_purposes') %}
        traits.consent_{{ purpose }},
        {%- endfor %}
        {%- set holdouts = var('cdp_segment_holdouts', {}) %}
        {%- if holdouts %}
        case memberships.segment_name
            {%- for segment, share in holdouts.items() %}
            when '{{ segment }}' then
                mod(abs({{ cdp_identifier_key("'holdout'", 'memberships.customer_id') }}), 10000) < {{ (share * 10000) | int }}
            {%- endfor %}
            else false
        end as is_holdout
        {%- else %}
        false as is_holdout
        {%- endif %}
    from memberships
    inner join traits on traits.customer_id = memberships.customer_id
    where memberships.customer_id not in (select customer_id from suppressed)

)

select * from final
