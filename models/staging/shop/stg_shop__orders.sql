{#- A table, not a view: identity stitching, profile attributes and customer_events read it more than
    once per build, so duplicates are removed once per build instead of on every read. -#}
{{ config(materialized='table', enabled=var('cdp_using_shop', true)) }}

with

source as (

    select * from {{ source('shop', 'orders') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by {{ cdp_clean_identifier('order_id') }}
            order by updated_at desc nulls last
        ) as version_rank
    from source

),

latest_versions as (

    select * from ranked
    where version_rank = 1

),

renamed as (

    select
        {{ cdp_clean_identifier('order_id') }} as order_id,
        {{ cdp_clean_identifier('customer_id') }} as customer_id,
        {{ cdp_normalize_email('email') }} as email,
        {{ cdp_normalize_phone('phone', 'shipping_country') }} as phone,
        lower({{ cdp_clean_identifier('status') }}) as status,
        upper({{ cdp_clean_identifier('currency') }}) as currency,
        cast(subtotal as {{ dbt.type_numeric() }}) as subtotal,
        cast(tax as {{ dbt.type_numeric() }}) as tax,
        cast(shipping as {{ dbt.type_numeric() }}) as shipping,
        cast(total as {{ dbt.type_numeric() }}) as total,
        cast(coalesce(refunded_amount, 0) as {{ dbt.type_numeric() }}) as refunded_amount,
        {{ cdp_clean_identifier('shipping_address_line1') }} as shipping_address_line1,
        {{ cdp_clean_identifier('shipping_city') }} as shipping_city,
        {{ cdp_clean_identifier('shipping_postal_code') }} as shipping_postal_code,
        upper({{ cdp_clean_identifier('shipping_country') }}) as shipping_country,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at
    from latest_versions

),

final as (

    select
        order_id,
        customer_id,
        email,
        phone,
        status,
        currency,
        subtotal,
        tax,
        shipping,
        total,
        refunded_amount,
        cast(
            case
                when status = 'cancelled' then 0
                else total - refunded_amount
            end as {{ dbt.type_numeric() }}
        ) as net_amount,
        coalesce(status in ('refunded', 'partially_refunded') or refunded_amount > 0, false) as is_refunded,
        coalesce(status = 'refunded' or (total > 0 and refunded_amount >= total), false) as is_fully_refunded,
        coalesce(status = 'cancelled', false) as is_cancelled,
        coalesce(status in ('completed', 'refunded', 'partially_refunded'), false) as is_completed,
        shipping_address_line1,
        shipping_city,
        shipping_postal_code,
        shipping_country,
        created_at,
        updated_at
    from renamed
    where order_id is not null

)

select * from final
