{#-
    One row per session: page and track events of one visitor with no gap longer than
    var cdp_session_timeout_minutes. A visitor is the customer (so sessions follow a person across
    devices once stitched) or, for events no customer claims, the anonymous id. A session crossing
    midnight stays one session.

    Incremental, per visitor. Each session keeps how many events it has and a fingerprint of them (the
    sum of their customer_events.event_fingerprint). A build compares, per visitor, the stored counts and
    fingerprints with those of customer_events (one GROUP BY over its page and track events), and
    sessionises again only the visitors that differ: new or late events, events re-attributed by a
    merge or a split, erased events. Their stored sessions are replaced whole (strategy
    cdp_replace_keys); a visitor left with no events (merged into another customer) sends a row with no
    session_id, which only deletes its sessions. A full refresh gives the same table. The timeout of the
    last build is kept in customer_sessions__state; a build with another one sessionises every visitor.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdp_replace_keys',
    unique_key='visitor_id',
    cdp_tombstone_column='session_id',
    on_schema_change='fail',
    post_hook=["{{ cdp_save_state(this, {'session_timeout_minutes': cdp_session_timeout_minutes()}) }}"],
) }}

{%- set resessionise_all = false %}
{%- if is_incremental() %}
    {%- do cdp_check_incremental_columns(this, ['visitor_id', 'event_fingerprint']) %}
    {#- The timeout the stored sessions were cut with (customer_sessions__state): another one (or none
        recorded) sessionises every visitor again. #}
    {%- set state = cdp_read_state(this, ['session_timeout_minutes']) %}
    {%- set resessionise_all = execute and (state is none
        or state.session_timeout_minutes | int != cdp_session_timeout_minutes()) %}
{%- endif %}

with

events as (

    select * from {{ ref('customer_events') }}
    where event_type in ('page', 'track')

),

visitors as (
    {#- Only the columns a session keeps; the device is classified per event (a short string instead
        of the user agent travels through the windows). #}
    select
        events.event_id,
        events.customer_id,
        events.anonymous_id,
        events.event_type,
        events.occurred_at,
        events.page_url,
        events.referrer,
        events.utm_source,
        events.utm_medium,
        events.utm_campaign,
        case
            when events.user_agent is null then null
            when lower(events.user_agent) like '%ipad%' or lower(events.user_agent) like '%tablet%' then 'tablet'
            when
                lower(events.user_agent) like '%mobile%' or lower(events.user_agent) like '%android%'
                or lower(events.user_agent) like '%iphone%' then 'mobile'
            else 'desktop'
        end as device_type,
        coalesce(events.customer_id, 'anonymous:' || events.anonymous_id) as visitor_id,
        events.event_fingerprint
    from events
    where events.customer_id is not null or events.anonymous_id is not null

),

{%- if is_incremental() %}

    current_visitors as (  -- noqa: ST03

        select
            visitor_id,
            count(*) as events,
            sum(event_fingerprint) as event_fingerprint
        from visitors
        group by visitor_id

    ),

    stored_visitors as (  -- noqa: ST03

        select
            visitor_id,
            sum(events) as events,
            sum(event_fingerprint) as event_fingerprint
        from {{ this }}
        group by visitor_id

    ),

    changed_visitors as (
        {#- The CTEs above are read inside cdp_changed_keys (hence their noqa). #}
        select
            changed.visitor_id,
            changed.is_gone
        from ({{ cdp_changed_keys(
            'current_visitors', 'stored_visitors', 'visitor_id', 'events', none, resessionise_all) }}) as changed

    ),

    to_sessionise as (

        select visitors.*
        from visitors
        inner join changed_visitors on visitors.visitor_id = changed_visitors.visitor_id

    ),
{%- else %}

    changed_visitors as (
        {#- A full build: every visitor is sessionised, none is gone. #}
        select
            visitor_id,
            false as is_gone
        from visitors
        where 1 = 0

    ),

    to_sessionise as (

        select * from visitors

    ),
{%- endif %}

previous as (

    select
        to_sessionise.*,
        lag(to_sessionise.occurred_at)
            over (
                partition by to_sessionise.visitor_id
                order by to_sessionise.occurred_at, to_sessionise.event_id
            )
            as previous_occurred_at
    from to_sessionise

),

gaps as (

    select
        previous.*,
        case
            when previous.previous_occurred_at is null then 1
            when
                {{ dbt.datediff('previous.previous_occurred_at', 'previous.occurred_at', 'second') }}
                > {{ cdp_session_timeout_minutes() * 60 }}
                then 1
            else 0
        end as is_session_start
    from previous

),

numbered as (

    select
        gaps.*,
        sum(gaps.is_session_start) over (
            partition by gaps.visitor_id
            order by gaps.occurred_at, gaps.event_id rows between unbounded preceding and current row
        ) as session_number
    from gaps

),

sessions as (

    select
        visitor_id,
        session_number,
        max(customer_id) as customer_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as events,
        cast(sum(event_fingerprint) as {{ dbt.type_bigint() }}) as event_fingerprint,
        count(case when event_type = 'page' then 1 end) as page_views,
        {{ cdp_arg_min('page_url', 'occurred_at') }} as landing_page_url,
        {{ cdp_arg_min('referrer', 'occurred_at') }} as referrer,
        {{ cdp_arg_min('utm_source', 'occurred_at') }} as utm_source,
        {{ cdp_arg_min('utm_medium', 'occurred_at') }} as utm_medium,
        {{ cdp_arg_min('utm_campaign', 'occurred_at') }} as utm_campaign,
        {{ cdp_arg_min('device_type', 'occurred_at') }} as device_type,
        {{ cdp_arg_min('anonymous_id', 'occurred_at') }} as anonymous_id
    from numbered
    group by visitor_id, session_number

),

final as (

    select
        {{ dbt.hash("visitor_id || ':' || cast(session_number as " ~ dbt.type_string() ~ ")") }} as session_id,
        visitor_id,
        customer_id,
        anonymous_id,
        session_number,
        started_at,
        ended_at,
        {{ dbt.datediff('started_at', 'ended_at', 'second') }} as duration_seconds,
        events,
        page_views,
        landing_page_url,
        referrer,
        utm_source,
        utm_medium,
        utm_campaign,
        coalesce(device_type, 'unknown') as device_type,
        event_fingerprint
    from sessions

),

tombstones as (
    {#- A visitor with no events left: a row that only deletes its stored sessions. #}
    select
        cast(null as {{ dbt.type_string() }}) as session_id,
        visitor_id,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        cast(null as {{ dbt.type_bigint() }}) as session_number,
        cast(null as {{ dbt.type_timestamp() }}) as started_at,
        cast(null as {{ dbt.type_timestamp() }}) as ended_at,
        cast(null as {{ dbt.type_bigint() }}) as duration_seconds,
        cast(null as {{ dbt.type_bigint() }}) as events,
        cast(null as {{ dbt.type_bigint() }}) as page_views,
        cast(null as {{ dbt.type_string() }}) as landing_page_url,
        cast(null as {{ dbt.type_string() }}) as referrer,
        cast(null as {{ dbt.type_string() }}) as utm_source,
        cast(null as {{ dbt.type_string() }}) as utm_medium,
        cast(null as {{ dbt.type_string() }}) as utm_campaign,
        cast(null as {{ dbt.type_string() }}) as device_type,
        cast(null as {{ dbt.type_bigint() }}) as event_fingerprint
    from changed_visitors
    where is_gone

)

select * from final
union all
select * from tombstones
