{#- A table, not a view: identity stitching, profile attributes and customer_events read it more than
    once per build, so duplicates are removed once per build instead of on every read. -#}
{{ config(
    materialized='table',
    enabled=var('cdp_using_segment', true) and var('cdp_using_segment_order_completed', true),
) }}

{%- set columns = cdp_source_columns('segment', 'order_completed') %}

with

source as (

    select * from {{ source('segment', 'order_completed') }}

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
        coalesce({{ cdp_clean_identifier(cdp_column(columns, ['event'])) }}, 'order_completed') as event_name,
        {{ cdp_clean_identifier(cdp_column(columns, ['order_id'])) }} as order_id,
        {{ cdp_column(columns, ['total'], 'numeric') }} as total,
        {{ cdp_column(columns, ['revenue'], 'numeric') }} as revenue,
        upper({{ cdp_clean_identifier(cdp_column(columns, ['currency'])) }}) as currency
    from first_deliveries

),

final as (

    select * from renamed
    where event_id is not null

)

select * from final
