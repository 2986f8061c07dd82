{#-
    One row per event: page views, track events, identifies, orders, email events and consent changes,
    on one timeline with the customer each belongs to. Attribution uses the strongest identifier the
    event carries (user_id, then email, phone, anonymous_id), looked up in identity_graph, so browsing
    before sign-up belongs to the customer once any later event links the device. Rebuilt each run, so
    merges and splits re-attribute history at once.
-#}

with

graph as (

    select * from {{ ref('identity_graph') }}

),

pages as (

    select * from {{ ref('stg_segment__pages') }}

),

tracks as (

    select * from {{ ref('stg_segment__tracks') }}

),

identifies as (

    select * from {{ ref('stg_segment__identifies') }}

),

{%- if cdp_model_enabled('stg_shop__orders') %}

orders as (

    select * from {{ ref('stg_shop__orders') }}

),
{%- endif %}
{%- if cdp_model_enabled('stg_esp__email_events') %}

email_events as (

    select * from {{ ref('stg_esp__email_events') }}

),
{%- endif %}
{%- if cdp_model_enabled('stg_consent__consent_events') %}

consent_events as (

    select * from {{ ref('stg_consent__consent_events') }}

),
{%- endif %}

unioned as (

    select
        'page:' || event_id as event_id,
        'page' as event_type,
        coalesce(page_name, page_path, 'page') as event_name,
        occurred_at,
        anonymous_id,
        user_id,
        cast(null as {{ dbt.type_string() }}) as email,
        cast(null as {{ dbt.type_string() }}) as phone,
        page_url,
        referrer,
        utm_source,
        utm_medium,
        utm_campaign,
        user_agent,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_numeric() }}) as revenue,
        cast(null as {{ dbt.type_string() }}) as detail
    from pages

    union all

    select
        'track:' || event_id,
        'track',
        event_name,
        occurred_at,
        anonymous_id,
        user_id,
        null,
        null,
        page_url,
        null,
        utm_source,
        utm_medium,
        utm_campaign,
        user_agent,
        null,
        null,
        null
    from tracks

    union all

    select
        'identify:' || event_id,
        'identify',
        'identify',
        occurred_at,
        anonymous_id,
        user_id,
        email,
        phone,
        page_url,
        null,
        null,
        null,
        null,
        user_agent,
        null,
        null,
        null
    from identifies
    {%- if cdp_model_enabled('stg_shop__orders') %}

    union all

    select
        'order:' || order_id,
        'order',
        'order_' || status,
        created_at,
        null,
        customer_id,
        email,
        phone,
        null,
        null,
        null,
        null,
        null,
        null,
        order_id,
        net_amount,
        currency
    from orders
    {%- endif %}
    {%- if cdp_model_enabled('stg_esp__email_events') %}

    union all

    select
        'email:' || email_event_id,
        'email',
        'email_' || event_type,
        occurred_at,
        null,
        null,
        email,
        null,
        url,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        campaign_name
    from email_events
    {%- endif %}
    {%- if cdp_model_enabled('stg_consent__consent_events') %}

    union all

    select
        'consent:' || consent_event_id,
        'consent',
        'consent_' || purpose || case when is_granted then '_granted' else '_revoked' end,
        occurred_at,
        anonymous_id,
        user_id,
        email,
        phone,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        consent_source
    from consent_events
    {%- endif %}

),

attributed as (

    select
        unioned.*,
        coalesce(
            by_user.customer_id, by_email.customer_id, by_phone.customer_id, by_device.customer_id
        ) as customer_id
    from unioned
    left join graph as by_user
        on by_user.identifier_type = 'user_id' and by_user.identifier_value = unioned.user_id
    left join graph as by_email
        on by_email.identifier_type = 'email' and by_email.identifier_value = unioned.email
    left join graph as by_phone
        on by_phone.identifier_type = 'phone' and by_phone.identifier_value = unioned.phone
    left join graph as by_device
        on by_device.identifier_type = 'anonymous_id' and by_device.identifier_value = unioned.anonymous_id

),

final as (

    select
        event_id,
        customer_id,
        event_type,
        event_name,
        occurred_at,
        anonymous_id,
        user_id,
        email,
        phone,
        page_url,
        referrer,
        utm_source,
        utm_medium,
        utm_campaign,
        user_agent,
        order_id,
        revenue,
        detail
    from attributed

)

select * from final
