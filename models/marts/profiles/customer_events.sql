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

{%- if cdp_model_enabled('stg_segment__pages') %}

    pages as (

        select * from {{ ref('stg_segment__pages') }}

    ),
{%- endif %}

{%- if cdp_model_enabled('stg_segment__tracks') %}

    tracks as (

        select * from {{ ref('stg_segment__tracks') }}

    ),
{%- endif %}

{%- if cdp_model_enabled('stg_segment__identifies') %}

    identifies as (

        select * from {{ ref('stg_segment__identifies') }}

    ),
{%- endif %}

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
    {#- One branch per enabled source, each with every column, so any subset unions. -#}
    {%- set branches = [] %}
    {%- if cdp_model_enabled('stg_segment__pages') %}
        {%- set branch %}
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
        {%- endset %}
        {%- do branches.append(branch) %}
    {%- endif %}
    {%- if cdp_model_enabled('stg_segment__tracks') %}
        {%- set branch %}
    select
        'track:' || event_id as event_id,
        'track' as event_type,
        event_name,
        occurred_at,
        anonymous_id,
        user_id,
        cast(null as {{ dbt.type_string() }}) as email,
        cast(null as {{ dbt.type_string() }}) as phone,
        page_url,
        cast(null as {{ dbt.type_string() }}) as referrer,
        utm_source,
        utm_medium,
        utm_campaign,
        user_agent,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_numeric() }}) as revenue,
        cast(null as {{ dbt.type_string() }}) as detail
    from tracks
        {%- endset %}
        {%- do branches.append(branch) %}
    {%- endif %}
    {%- if cdp_model_enabled('stg_segment__identifies') %}
        {%- set branch %}
    select
        'identify:' || event_id as event_id,
        'identify' as event_type,
        'identify' as event_name,
        occurred_at,
        anonymous_id,
        user_id,
        email,
        phone,
        page_url,
        cast(null as {{ dbt.type_string() }}) as referrer,
        cast(null as {{ dbt.type_string() }}) as utm_source,
        cast(null as {{ dbt.type_string() }}) as utm_medium,
        cast(null as {{ dbt.type_string() }}) as utm_campaign,
        user_agent,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_numeric() }}) as revenue,
        cast(null as {{ dbt.type_string() }}) as detail
    from identifies
        {%- endset %}
        {%- do branches.append(branch) %}
    {%- endif %}
    {%- if cdp_model_enabled('stg_shop__orders') %}
        {%- set branch %}
    select
        'order:' || order_id as event_id,
        'order' as event_type,
        'order_' || status as event_name,
        created_at as occurred_at,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        customer_id as user_id,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as page_url,
        cast(null as {{ dbt.type_string() }}) as referrer,
        cast(null as {{ dbt.type_string() }}) as utm_source,
        cast(null as {{ dbt.type_string() }}) as utm_medium,
        cast(null as {{ dbt.type_string() }}) as utm_campaign,
        cast(null as {{ dbt.type_string() }}) as user_agent,
        order_id,
        net_amount as revenue,
        currency as detail
    from orders
        {%- endset %}
        {%- do branches.append(branch) %}
    {%- endif %}
    {%- if cdp_model_enabled('stg_esp__email_events') %}
        {%- set branch %}
    select
        'email:' || email_event_id as event_id,
        'email' as event_type,
        'email_' || event_type as event_name,
        occurred_at,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        cast(null as {{ dbt.type_string() }}) as user_id,
        email,
        cast(null as {{ dbt.type_string() }}) as phone,
        url as page_url,
        cast(null as {{ dbt.type_string() }}) as referrer,
        cast(null as {{ dbt.type_string() }}) as utm_source,
        cast(null as {{ dbt.type_string() }}) as utm_medium,
        cast(null as {{ dbt.type_string() }}) as utm_campaign,
        cast(null as {{ dbt.type_string() }}) as user_agent,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_numeric() }}) as revenue,
        campaign_name as detail
    from email_events
        {%- endset %}
        {%- do branches.append(branch) %}
    {%- endif %}
    {%- if cdp_model_enabled('stg_consent__consent_events') %}
        {%- set branch %}
    select
        'consent:' || consent_event_id as event_id,
        'consent' as event_type,
        'consent_' || purpose || case when is_granted then '_granted' else '_revoked' end as event_name,
        occurred_at,
        anonymous_id,
        user_id,
        email,
        phone,
        cast(null as {{ dbt.type_string() }}) as page_url,
        cast(null as {{ dbt.type_string() }}) as referrer,
        cast(null as {{ dbt.type_string() }}) as utm_source,
        cast(null as {{ dbt.type_string() }}) as utm_medium,
        cast(null as {{ dbt.type_string() }}) as utm_campaign,
        cast(null as {{ dbt.type_string() }}) as user_agent,
        cast(null as {{ dbt.type_string() }}) as order_id,
        cast(null as {{ dbt.type_numeric() }}) as revenue,
        consent_source as detail
    from consent_events
        {%- endset %}
        {%- do branches.append(branch) %}
    {%- endif %}
    {{ branches | join('\n    union all\n') }}

),

attributed as (

    select
        unioned.*,
        coalesce(
            by_user.customer_id, by_email.customer_id, by_phone.customer_id, by_device.customer_id
        ) as customer_id
    from unioned
    left join graph as by_user
        on by_user.identifier_type = 'user_id' and unioned.user_id = by_user.identifier_value
    left join graph as by_email
        on by_email.identifier_type = 'email' and unioned.email = by_email.identifier_value
    left join graph as by_phone
        on by_phone.identifier_type = 'phone' and unioned.phone = by_phone.identifier_value
    left join graph as by_device
        on by_device.identifier_type = 'anonymous_id' and unioned.anonymous_id = by_device.identifier_value

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
