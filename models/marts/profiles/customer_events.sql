{#-
    One row per event: page views, track events, identifies, orders, email events and consent changes,
    on one timeline with the customer each belongs to. Attribution uses the strongest identifier the
    event carries (user_id, then email, phone, anonymous_id) that identity_graph knows; the row keeps
    that identifier (attributed_by_type, attributed_by_key), so browsing before sign-up moves to the
    customer once a later event links the device.

    Incremental (delete+insert on event_id). Each build
      1. loads the events of each type whose loaded_at is at or after the latest loaded_at of that type
         already stored, minus var cdp_events_lookback_hours (late rows inside the window are picked
         up, rows landing later than that are not: a --full-refresh picks them up), and writes those
         new to the table or whose fingerprint differs from their stored copy's (an event read again
         unchanged keeps its row);
      2. re-attributes stored events whose attributing identifier now belongs to another customer or
         left the graph (merges, splits, erasures), and stored events that carry an identifier new to
         the graph (it may be stronger than the one that attributed them). Both are found by comparing
         identity_graph with the graph of the previous build (customer_events__graph, written by the
         post-hook), so re-attribution joins the stored events to a small set of changed identifiers
         and never rereads the staging models. New identifiers are first matched with those stored
         events carry above their attributing one (customer_events__unmatched, also kept by the
         post-hook): usually none are, and the stored events are not read for them.
    A full refresh attributes every event the same way, so both paths give the same table.

    Identifiers on the erasure list (cdp privacy forget) are nulled on every row written; a build
    rewrites the stored events that carry an identifier forgotten since the last build
    (customer_events__forgotten, kept by the post-hook, holds those already honoured).

    Each build has a number, one more than the last (written_in_build), on every row it writes; a row it
    replaced or re-attributed also keeps the visitor the event belonged to before (previous_visitor_id).
    customer_sessions and int_computed_traits read the rows of the latest build to learn which visitors
    and customers to compute again, instead of comparing all of them (cdp_events_changed_since).
-#}
{{ config(
    materialized='incremental',
    unique_key='event_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    post_hook=[
        "{{ cdp_replace_table(cdp_customer_events_snapshot(this),
            'select identifier_key, customer_id from ' ~ ref('identity_graph')) }}",
        "{{ cdp_keep_unmatched_identifiers(this) }}",
        "{{ cdp_replace_table(cdp_customer_events_forgotten(this),
            'select identifier_hash from ' ~ ref('stg_privacy__forgotten_identifiers')) }}",
    ],
) }}

{%- set event_columns = [
    'event_id', 'event_type', 'event_name', 'occurred_at', 'loaded_at', 'anonymous_id', 'user_id', 'email',
    'phone', 'page_url', 'referrer', 'utm_source', 'utm_medium', 'utm_campaign', 'user_agent', 'order_id',
    'revenue', 'detail',
] %}
{%- do cdp_events_lookback_hours() %}
{%- set since = {} %}
{%- set snapshot = none %}
{#- One more than the latest build of the stored table, full refreshes included, so a reader's state
    never matches a build it has not read. #}
{%- set previous_builds = cdp_customer_events_builds(this) %}
{#- Each identifier column and the graph join that attributes by it. -#}
{%- set identifier_columns = {
    'user_id': 'by_user', 'email': 'by_email', 'phone': 'by_phone', 'anonymous_id': 'by_device'} %}
{%- set forgotten_side = load_cached_relation(cdp_customer_events_forgotten(this)) if is_incremental() else none %}
{%- set forgotten = cdp_customer_events_forgotten_counts(ref('stg_privacy__forgotten_identifiers'), forgotten_side) %}
{%- set build_number = (previous_builds.latest if previous_builds else 0) + 1 %}
{%- if is_incremental() %}
    {%- do cdp_check_incremental_columns(this, [
        'loaded_at', 'attributed_by_type', 'attributed_by_key', 'event_fingerprint', 'previous_visitor_id',
        'written_in_build']) %}
    {%- set since = cdp_customer_events_since(this) %}
    {%- set snapshot = load_cached_relation(cdp_customer_events_snapshot(this)) %}
    {%- set unmatched = load_cached_relation(cdp_customer_events_unmatched(this)) %}
    {%- if snapshot is not none %}
        {%- set changes = cdp_identity_changes(ref('identity_graph'), snapshot, unmatched) %}
    {%- endif %}
{%- endif %}

with

graph as (

    select * from {{ ref('identity_graph') }}

),
{%- if forgotten['all'] > 0 %}

    forgotten as (

        select identifier_hash from {{ ref('stg_privacy__forgotten_identifiers') }}

    ),
{%- endif %}

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

new_events as (
    {#- One branch per enabled source, each with every column, so any subset unions. loaded_at is when
        the warehouse got this version of the event: the loader's time (Segment uuid_ts), else the
        collector's received_at; an order's updated_at; the export's occurred_at for email and consent. -#}
    {%- set branches = [] %}
    {%- if cdp_model_enabled('stg_segment__pages') %}
        {%- set branch %}
    select
        'page:' || event_id as event_id,
        'page' as event_type,
        coalesce(page_name, page_path, 'page') as event_name,
        occurred_at,
        coalesce(loaded_at, received_at, occurred_at) as loaded_at,
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
    {{ cdp_customer_events_window(since, 'page', ['loaded_at', 'received_at', 'occurred_at']) }}
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
        coalesce(loaded_at, received_at, occurred_at) as loaded_at,
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
    {{ cdp_customer_events_window(since, 'track', ['loaded_at', 'received_at', 'occurred_at']) }}
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
        coalesce(loaded_at, received_at, occurred_at) as loaded_at,
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
    {{ cdp_customer_events_window(since, 'identify', ['loaded_at', 'received_at', 'occurred_at']) }}
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
        coalesce(updated_at, created_at) as loaded_at,
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
    {{ cdp_customer_events_window(since, 'order', ['updated_at', 'created_at']) }}
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
        occurred_at as loaded_at,
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
    {{ cdp_customer_events_window(since, 'email', ['occurred_at']) }}
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
        occurred_at as loaded_at,
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
    {{ cdp_customer_events_window(since, 'consent', ['occurred_at']) }}
        {%- endset %}
        {%- do branches.append(branch) %}
    {%- endif %}
    {{ branches | join('\n    union all\n') }}

),

{%- if is_incremental() %}

    stored as (

        select * from {{ this }}

    ),
    {%- if snapshot is not none %}

        moved_identifiers as (

            select moved.identifier_key
            from ({{ cdp_moved_identifiers_sql(ref('identity_graph'), snapshot) }}) as moved

        ),

        added_identifiers as (

            select
                added.identifier_type,
                added.identifier_value
            from ({{ cdp_added_identifiers_sql(ref('identity_graph'), snapshot, unmatched) }}) as added

        ),

        {%- if forgotten['new'] > 0 %}

            newly_forgotten as (
                {#- Forgotten since the last build: stored events carrying them are written again. -#}
                select forgotten.identifier_hash
                from forgotten
                {%- if forgotten_side is not none %}
                    where forgotten.identifier_hash not in (
                        select honoured.identifier_hash from {{ forgotten_side }} as honoured
                    )
                {%- endif %}

            ),
        {%- endif %}

        affected as (
            {#- Only the kinds of change this build has (cdp_identity_changes): none, no read of stored. -#}
            select stored.*
            from stored
            where
                1 = 0
                {%- if 'moved' in changes %}
                    or stored.attributed_by_key in (
                        select moved_identifiers.identifier_key from moved_identifiers
                    )
                {%- endif %}
                {%- for identifier_type in ['user_id', 'email', 'phone', 'anonymous_id']
                    if identifier_type in changes %}
                    or stored.{{ identifier_type }} in (
                        select added_identifiers.identifier_value from added_identifiers
                        where added_identifiers.identifier_type = '{{ identifier_type }}'
                    )
                {%- endfor %}
                {%- if forgotten['new'] > 0 %}
                    {%- for identifier_type in identifier_columns %}
                        or {{ cdp_forgotten_hash("'" ~ identifier_type ~ "'", 'stored.' ~ identifier_type) }} in (
                            select newly_forgotten.identifier_hash from newly_forgotten
                        )
                    {%- endfor %}
                {%- endif %}

        ),
    {%- else %}

        affected as (
            {#- No graph of the previous build (it was dropped): every stored event is attributed anew. -#}
            select * from stored

        ),
    {%- endif %}

    stored_copies as (
        {#- The stored copy of each new event, if there is one: its fingerprint and whose it was. -#}
        select
            stored_copies.event_id,
            stored_copies.event_fingerprint,
            {{ cdp_visitor_id('stored_copies.customer_id', 'stored_copies.anonymous_id') }} as previous_visitor_id
        from ({{ cdp_stored_rows(this, 'event_id', 'new_events',
            ['event_id', 'event_fingerprint', 'customer_id', 'anonymous_id']) }}) as stored_copies

    ),

    fresh_events as (
        {#- New events, and new versions of stored ones. An event the lookback reads again with the
            fingerprint of its stored copy keeps its row; an identity change that concerns it
            re-attributes that row below. Var cdp_verify_incremental writes every event read again. -#}
        select
            new_events.*,
            stored_copies.previous_visitor_id
        from new_events
        left join stored_copies on new_events.event_id = stored_copies.event_id
        {%- if not var('cdp_verify_incremental', false) %}
            where
                stored_copies.event_id is null
                or stored_copies.event_fingerprint != {{ cdp_event_fingerprint(
                    'new_events.event_id', 'new_events.occurred_at', 'new_events.loaded_at') }}
        {%- endif %}

    ),

    reattributed as (
        {#- Stored events to attribute again, unless the new batch carries a fresher copy. -#}
        select
            affected.{{ event_columns | join(', affected.') }},
            {{ cdp_visitor_id('affected.customer_id', 'affected.anonymous_id') }} as previous_visitor_id
        from affected
        left join fresh_events on affected.event_id = fresh_events.event_id
        where fresh_events.event_id is null

    ),

    to_attribute as (

        select * from fresh_events
        union all
        select * from reattributed

    ),
{%- else %}

    to_attribute as (

        select
            new_events.*,
            cast(null as {{ dbt.type_string() }}) as previous_visitor_id
        from new_events

    ),
{%- endif %}

attributed as (
    {#- A forgotten identifier is never in the graph, so only values the graph does not know are hashed
        and looked up in the erasure list; a forgotten one is nulled. -#}
    select
        {%- for column in event_columns %}
            {%- if column in identifier_columns and forgotten['all'] > 0 %}
                case
                    when forgotten_{{ column }}.identifier_hash is not null then null
                    else to_attribute.{{ column }}
                end as {{ column }},
            {%- else %}
                to_attribute.{{ column }},
            {%- endif %}
        {%- endfor %}
        to_attribute.previous_visitor_id,
        coalesce(
            by_user.customer_id, by_email.customer_id, by_phone.customer_id, by_device.customer_id
        ) as customer_id,
        case
            when by_user.customer_id is not null then 'user_id'
            when by_email.customer_id is not null then 'email'
            when by_phone.customer_id is not null then 'phone'
            when by_device.customer_id is not null then 'anonymous_id'
        end as attributed_by_type,
        coalesce(
            by_user.identifier_key, by_email.identifier_key, by_phone.identifier_key, by_device.identifier_key
        ) as attributed_by_key
    from to_attribute
    left join graph as by_user
        on by_user.identifier_type = 'user_id' and to_attribute.user_id = by_user.identifier_value
    left join graph as by_email
        on by_email.identifier_type = 'email' and to_attribute.email = by_email.identifier_value
    left join graph as by_phone
        on by_phone.identifier_type = 'phone' and to_attribute.phone = by_phone.identifier_value
    left join graph as by_device
        on by_device.identifier_type = 'anonymous_id' and to_attribute.anonymous_id = by_device.identifier_value
    {%- if forgotten['all'] > 0 %}
        {%- for column, graph_alias in identifier_columns.items() %}
            left join forgotten as forgotten_{{ column }}
                on forgotten_{{ column }}.identifier_hash = case
                    when {{ graph_alias }}.identifier_key is null
                        then {{ cdp_forgotten_hash("'" ~ column ~ "'", 'to_attribute.' ~ column) }}
                end
        {%- endfor %}
    {%- endif %}

),

final as (

    select
        event_id,
        customer_id,
        event_type,
        event_name,
        occurred_at,
        loaded_at,
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
        detail,
        attributed_by_type,
        attributed_by_key,
        {{ cdp_event_fingerprint('event_id', 'occurred_at', 'loaded_at') }} as event_fingerprint,
        previous_visitor_id,
        cast({{ build_number }} as {{ dbt.type_bigint() }}) as written_in_build
    from attributed

)

select * from final
