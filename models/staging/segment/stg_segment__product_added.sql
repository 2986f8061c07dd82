{{ config(enabled=var('cdp_using_segment', true) and var('cdp_using_segment_product_added', true)) }}

{%- set columns = cdp_source_columns('segment', 'product_added') %}

with

source as (

    select * from {{ source('segment', 'product_added') }}

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
        coalesce({{ cdp_clean_identifier(cdp_column(columns, ['event'])) }}, 'product_added') as event_name,
        {{ cdp_clean_identifier(cdp_column(columns, ['cart_id'])) }} as cart_id,
        {{ cdp_clean_identifier(cdp_column(columns, ['product_id'])) }} as product_id,
        {{ cdp_clean_identifier(cdp_column(columns, ['sku'])) }} as sku,
        {{ cdp_column(columns, ['name', 'product_name']) }} as product_name,
        {{ cdp_column(columns, ['price'], 'numeric') }} as price,
        {{ cdp_column(columns, ['quantity'], 'integer') }} as quantity
    from first_deliveries

),

final as (

    select * from renamed
    where event_id is not null

)

select * from final
