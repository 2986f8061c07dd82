{#- A table, not a view: its normalisation (phone and email rules per identifier type) and duplicate
    removal would otherwise run again for customer_events and for each of its data tests. -#}
{{ config(materialized='table', enabled=var('cdp_using_consent', true)) }}

with

source as (

    select * from {{ source('consent', 'consent_events') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by {{ cdp_clean_identifier('consent_event_id') }}
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
        {{ cdp_clean_identifier('consent_event_id') }} as consent_event_id,
        {{ cdp_regexp_replace('lower(' ~ cdp_clean_identifier('identifier_type') ~ ')', '[^a-z]+', '_') }}
            as identifier_type,
        identifier as identifier_raw,
        {{ cdp_regexp_replace('lower(' ~ cdp_clean_identifier('purpose') ~ ')', '[^a-z]+', '_') }} as purpose,
        {{ cdp_regexp_replace('lower(' ~ cdp_clean_identifier('status') ~ ')', '[^a-z]+', '_') }} as status_cleaned,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
        lower({{ cdp_clean_identifier('source') }}) as consent_source
    from first_copies

),

normalised as (

    select
        consent_event_id,
        identifier_type,
        case identifier_type
            when 'email' then {{ cdp_normalize_email('identifier_raw') }}
            when 'phone' then {{ cdp_normalize_phone('identifier_raw') }}
            else {{ cdp_clean_identifier('identifier_raw') }}
        end as identifier,
        purpose,
        case
            when status_cleaned in ('granted', 'grant', 'opt_in', 'opted_in', 'accepted', 'yes', 'true') then 'granted'
            when status_cleaned in (
                'revoked', 'revoke', 'denied', 'opt_out', 'opted_out', 'rejected', 'withdrawn', 'no', 'false'
            ) then 'revoked'
            else status_cleaned
        end as status,
        occurred_at,
        consent_source
    from renamed

),

final as (

    select
        consent_event_id,
        identifier_type,
        identifier,
        case when identifier_type = 'email' then identifier end as email,
        case when identifier_type = 'phone' then identifier end as phone,
        case when identifier_type = 'user_id' then identifier end as user_id,
        case when identifier_type = 'anonymous_id' then identifier end as anonymous_id,
        purpose,
        status,
        case status
            when 'granted' then true
            when 'revoked' then false
        end as is_granted,
        occurred_at,
        consent_source
    from normalised
    where consent_event_id is not null

)

select * from final
