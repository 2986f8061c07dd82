{{ config(enabled=var('cdp_using_shop', true)) }}

with

source as (

    select * from {{ source('shop', 'order_lines') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by {{ cdp_clean_identifier('order_line_id') }}
            order by order_id
        ) as duplicate_rank
    from source

),

first_copies as (

    select * from ranked
    where duplicate_rank = 1

),

renamed as (

    select
        {{ cdp_clean_identifier('order_line_id') }} as order_line_id,
        {{ cdp_clean_identifier('order_id') }} as order_id,
        {{ cdp_clean_identifier('product_id') }} as product_id,
        {{ cdp_clean_identifier('sku') }} as sku,
        {{ cdp_clean_identifier('product_name') }} as product_name,
        lower({{ cdp_clean_identifier('category') }}) as category,
        cast(quantity as {{ dbt.type_bigint() }}) as quantity,
        cast(unit_price as {{ dbt.type_numeric() }}) as unit_price,
        cast(line_total as {{ dbt.type_numeric() }}) as line_total_raw
    from first_copies

),

final as (

    select
        order_line_id,
        order_id,
        product_id,
        sku,
        product_name,
        category,
        quantity,
        unit_price,
        cast(coalesce(line_total_raw, quantity * unit_price) as {{ dbt.type_numeric() }}) as line_total
    from renamed
    where order_line_id is not null

)

select * from final
