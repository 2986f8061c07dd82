{#- A table, not a view: identity stitching, profile attributes and customer_events read it more than
    once per build, so duplicates are removed once per build instead of on every read. -#}
{{ config(materialized='table', enabled=var('cdp_using_segment', true) and var('cdp_using_segment_identifies', true)) }}

{%- set columns = cdp_source_columns('segment', 'identifies') %}

with

source as (

    select * from {{ source('segment', 'identifies') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by {{ cdp_segment_event_id_column(columns) }}
            order by {{ cdp_segment_first_delivery_order(columns) }}
        ) as delivery_rank
    from source

),

first_deliveries as (

    select * from ranked
    where delivery_rank = 1

),

renamed as (

    select
        {{ cdp_segment_event_columns(columns) }},
        {{ cdp_clean_identifier(cdp_column(columns, ['first_name', 'context_traits_first_name'])) }}
            as first_name,
        {{ cdp_clean_identifier(cdp_column(columns, ['last_name', 'context_traits_last_name'])) }}
            as last_name,
        {{ cdp_clean_identifier(cdp_column(columns, ['address_city', 'context_traits_address_city'])) }}
            as address_city,
        {{ cdp_clean_identifier(cdp_column(columns, ['address_postal_code', 'context_traits_address_postal_code'])) }}
            as address_postal_code,
        upper({{ cdp_clean_identifier(cdp_column(columns, ['address_country', 'context_traits_address_country'])) }})
            as address_country
    from first_deliveries

),

final as (

    select * from renamed
    where event_id is not null

)

select * from final
