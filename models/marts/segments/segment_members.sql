{#-
    One row per segment and customer, with what syncs need: normalised identifiers and consent.
    Segments are the models listed in var cdp_segments plus those declared in var cdp_yaml_segments.
    Customers on the suppression list are left out of every segment; var cdp_segment_holdouts holds a
    deterministic share of a segment out (is_holdout), by a hash of segment name and customer id.
-#}
{%- set holdouts = cdp_segment_holdouts() %}

with

{% for segment in var('cdp_segments') %}
{{ segment }} as (

    select customer_id from {{ ref(segment) }}

),

{% endfor %}
declared as (

    select * from {{ ref('declared_segments') }}

),

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
        on
            graph.identifier_type = lower(trim(suppression.identifier_type))
            and graph.identifier_value = case
                when lower(trim(suppression.identifier_type)) = 'email' then lower(trim(suppression.identifier_value))
                else trim(suppression.identifier_value)
            end

),

memberships as (

    {%- for segment in var('cdp_segments') %}
    select distinct
        '{{ segment }}' as segment_name,
        customer_id
    from {{ segment }}
    union all
    {%- endfor %}
    select distinct
        segment_name,
        customer_id
    from declared

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
        {%- if holdouts %}
        case memberships.segment_name
            {%- for segment, share in holdouts.items() %}
            when '{{ segment }}' then {{ cdp_is_holdout('memberships.segment_name', 'memberships.customer_id', share) }}
            {%- endfor %}
            else false
        end as is_holdout
        {%- else %}
        false as is_holdout
        {%- endif %}
    from memberships
    inner join traits on memberships.customer_id = traits.customer_id
    where memberships.customer_id not in (select suppressed.customer_id from suppressed)

)

select * from final
