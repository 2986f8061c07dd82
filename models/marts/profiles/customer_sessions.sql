{#-
    One row per session: page and track events of one visitor with no gap longer than
    var cdp_session_timeout_minutes. A visitor is the customer (so sessions follow a person across
    devices once stitched) or, for events no customer claims, the anonymous id. A session crossing
    midnight stays one session.
-#}

with

events as (

    select * from {{ ref('customer_events') }}
    where event_type in ('page', 'track')

),

visitors as (

    select
        events.*,
        coalesce(events.customer_id, 'anonymous:' || events.anonymous_id) as visitor_id
    from events
    where events.customer_id is not null or events.anonymous_id is not null

),

gaps as (

    select
        visitors.*,
        case
            when
                lag(visitors.occurred_at)
                    over (partition by visitors.visitor_id order by visitors.occurred_at, visitors.event_id)
                is null
                then 1
            when {{ dbt.datediff(
                "lag(occurred_at) over (partition by visitor_id order by occurred_at, event_id)",
                "occurred_at", "second") }} > {{ var('cdp_session_timeout_minutes') * 60 }} then 1
            else 0
        end as is_session_start
    from visitors

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
        count(case when event_type = 'page' then 1 end) as page_views,
        {{ cdp_arg_min('page_url', 'occurred_at') }} as landing_page_url,
        {{ cdp_arg_min('referrer', 'occurred_at') }} as referrer,
        {{ cdp_arg_min('utm_source', 'occurred_at') }} as utm_source,
        {{ cdp_arg_min('utm_medium', 'occurred_at') }} as utm_medium,
        {{ cdp_arg_min('utm_campaign', 'occurred_at') }} as utm_campaign,
        {{ cdp_arg_min('user_agent', 'occurred_at') }} as user_agent,
        {{ cdp_arg_min('anonymous_id', 'occurred_at') }} as anonymous_id
    from numbered
    group by visitor_id, session_number

),

final as (

    select
        {{ dbt.hash("visitor_id || ':' || cast(session_number as " ~ dbt.type_string() ~ ")") }} as session_id,
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
        case
            when user_agent is null then 'unknown'
            when lower(user_agent) like '%ipad%' or lower(user_agent) like '%tablet%' then 'tablet'
            when
                lower(user_agent) like '%mobile%' or lower(user_agent) like '%android%'
                or lower(user_agent) like '%iphone%' then 'mobile'
            else 'desktop'
        end as device_type
    from sessions

)

select * from final
