{#-
    One row per session: page and track events of one visitor with no gap longer than
    var cdp_session_timeout_minutes. A visitor is the customer (so sessions follow a person across
    devices once stitched) or, for events no customer claims, the anonymous id. A session crossing
    midnight stays one session.

    Incremental, per visitor. A build sessionises again only the visitors with new or late events,
    events re-attributed by a merge or a split, or erased events. customer_events names them: the
    visitors of the rows its latest build wrote, before and after (cdp_events_changed_since). When it
    cannot (a full refresh or a skipped build of customer_events, var cdp_verify_incremental), each
    visitor's stored event count and fingerprint (the sum of customer_events.event_fingerprint, kept on
    each session) is compared with customer_events' (one GROUP BY over its page and track events).
    Their stored sessions are replaced whole (strategy cdp_replace_keys); every such visitor also sends a
    row with no session_id, which only deletes: a visitor left with no events (merged into another
    customer) loses its sessions. A full refresh gives the same table. The timeout and the
    customer_events build of the last build are kept in customer_sessions__state; a build with another
    timeout sessionises every visitor.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdp_replace_keys',
    unique_key='visitor_id',
    cdp_tombstone_column='session_id',
    on_schema_change='fail',
    post_hook=["{{ cdp_save_state(this, {
        'session_timeout_minutes': cdp_session_timeout_minutes(),
        'events_build': cdp_customer_events_latest_build(ref('customer_events'))}) }}"],
) }}

{%- set resessionise_all = false %}
{%- set changed_since = none %}
{%- if is_incremental() %}
    {%- do cdp_check_incremental_columns(this, ['visitor_id', 'event_fingerprint']) %}
    {#- The timeout the stored sessions were cut with (customer_sessions__state): another one (or none
        recorded) sessionises every visitor again. #}
    {%- set state = cdp_read_state(this, ['session_timeout_minutes']) %}
    {%- set resessionise_all = execute and (state is none
        or state.session_timeout_minutes | int != cdp_session_timeout_minutes()) %}
    {%- if not resessionise_all %}
        {%- set changed_since = cdp_events_changed_since(this, ref('customer_events')) %}
    {%- endif %}
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
        {{ cdp_visitor_id('events.customer_id', 'events.anonymous_id') }} as visitor_id,
        events.event_fingerprint
    from events
    where events.customer_id is not null or events.anonymous_id is not null

),

{%- if is_incremental() %}
    {#- customer_events is read by name below, not through `visitors`: a CTE read twice is materialised
        whole. #}
    {%- if changed_since is not none %}

        event_changes as (
            {#- The page and track rows customer_events wrote since this table was built: the visitor each
                event belongs to now and the one it belonged to before. -#}
            select
                {{ cdp_visitor_id('written.customer_id', 'written.anonymous_id') }} as visitor_id,
                written.previous_visitor_id
            from {{ ref('customer_events') }} as written
            where written.written_in_build > {{ changed_since }} and written.event_type in ('page', 'track')

        ),

        changed_visitors as (

            select visitor_id from event_changes where visitor_id is not null
            union
            select previous_visitor_id as visitor_id from event_changes where previous_visitor_id is not null

        ),
    {%- else %}

        current_visitors as (  -- noqa: ST03

            select
                {{ cdp_visitor_id('counted.customer_id', 'counted.anonymous_id') }} as visitor_id,
                count(*) as events,
                sum(counted.event_fingerprint) as event_fingerprint
            from {{ ref('customer_events') }} as counted
            where
                counted.event_type in ('page', 'track')
                and (counted.customer_id is not null or counted.anonymous_id is not null)
            group by {{ cdp_visitor_id('counted.customer_id', 'counted.anonymous_id') }}

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
            select changed.visitor_id
            from ({{ cdp_changed_keys(
                'current_visitors', 'stored_visitors', 'visitor_id', 'events', resessionise_all) }}) as changed

        ),
    {%- endif %}

    to_sessionise as (

        select visitors.*
        from visitors
        inner join changed_visitors on visitors.visitor_id = changed_visitors.visitor_id

    ),
{%- else %}

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

)
{%- if is_incremental() %},

    tombstones as (
        {#- Per visitor sessionised again, a row that only deletes its stored sessions: all of them go, also
            when the visitor has no events left. #}
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

    )
{%- endif %}

select * from final
{%- if is_incremental() %}
    union all
    select * from tombstones
{%- endif %}
