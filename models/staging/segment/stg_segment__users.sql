{#- A table, not a view: identity stitching, profile attributes and customer_events read it more than
    once per build, so duplicates are removed once per build instead of on every read. -#}
{{ config(materialized='table', enabled=var('cdp_using_segment', true) and var('cdp_using_segment_users', true)) }}

{%- set columns = cdp_source_columns('segment', 'users') %}
{%- set user_id = cdp_clean_identifier(cdp_column(columns, ['id', 'user_id'])) %}

with

source as (

    select * from {{ source('segment', 'users') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by {{ user_id }}
            order by
                {{ cdp_column(columns, ['received_at'], 'timestamp') }} desc nulls last,
                {{ cdp_column(columns, ['uuid_ts', 'loaded_at'], 'timestamp') }} desc nulls last
        ) as trait_rank
    from source

),

latest_traits as (

    select * from ranked
    where trait_rank = 1

),

renamed as (

    select
        {{ user_id }} as user_id,
        {{ cdp_normalize_email(cdp_column(columns, ['email', 'context_traits_email'])) }} as email,
        {{ cdp_normalize_phone(
            cdp_column(columns, ['phone', 'context_traits_phone']),
            cdp_column(columns, ['address_country', 'context_traits_address_country'])
        ) }} as phone,
        {{ cdp_clean_identifier(cdp_column(columns, ['first_name', 'context_traits_first_name'])) }} as first_name,
        {{ cdp_clean_identifier(cdp_column(columns, ['last_name', 'context_traits_last_name'])) }} as last_name,
        {{ cdp_column(columns, ['created_at', 'context_traits_created_at'], 'timestamp') }} as created_at,
        {{ cdp_column(columns, ['received_at'], 'timestamp') }} as received_at,
        {{ cdp_column(columns, ['uuid_ts', 'loaded_at'], 'timestamp') }} as loaded_at
    from latest_traits

),

final as (

    select * from renamed
    where user_id is not null

)

select * from final
