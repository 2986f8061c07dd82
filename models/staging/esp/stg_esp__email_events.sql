{#- A table, not a view: identity stitching, profile attributes and customer_events read it more than
    once per build, so duplicates are removed once per build instead of on every read. -#}
{{ config(materialized='table', enabled=var('cdp_using_esp', true)) }}

with

source as (

    select * from {{ source('esp', 'email_events') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by {{ cdp_clean_identifier('event_id') }}
            order by occurred_at asc nulls last
        ) as duplicate_rank
    from source

),

first_copies as (

    select * from ranked
    where duplicate_rank = 1

),

renamed as (

    select
        {{ cdp_clean_identifier('event_id') }} as email_event_id,
        {{ cdp_normalize_email('email') }} as email,
        {{ cdp_regexp_replace('lower(' ~ cdp_clean_identifier('event_type') ~ ')', '[^a-z]+', '_') }}
            as event_type_cleaned,
        {{ cdp_clean_identifier('campaign_id') }} as campaign_id,
        {{ cdp_clean_identifier('campaign_name') }} as campaign_name,
        {{ cdp_clean_identifier('url') }} as url,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at
    from first_copies

),

event_types as (

    select
        *,
        case event_type_cleaned
            when 'send' then 'sent'
            when 'delivery' then 'delivered'
            when 'opened' then 'open'
            when 'clicked' then 'click'
            when 'bounced' then 'bounce'
            when 'hard_bounce' then 'bounce'
            when 'soft_bounce' then 'bounce'
            when 'unsubscribed' then 'unsubscribe'
            when 'spam' then 'spam_complaint'
            when 'spamreport' then 'spam_complaint'
            when 'spam_report' then 'spam_complaint'
            when 'complaint' then 'spam_complaint'
            else event_type_cleaned
        end as event_type
    from renamed

),

final as (

    select
        email_event_id,
        email,
        event_type,
        campaign_id,
        campaign_name,
        url,
        occurred_at,
        event_type in ('open', 'click') as is_engagement
    from event_types
    where email_event_id is not null

)

select * from final
