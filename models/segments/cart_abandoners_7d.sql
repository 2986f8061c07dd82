{#- Added to cart or started checkout in the last 7 days, with no order since. -#}

with

traits as (

    select * from {{ ref('customer_traits') }}

),

final as (

    select customer_id
    from traits
    where
        last_cart_activity_at >= {{ dbt.dateadd('day', -7, 'as_of') }}
        and (last_order_at is null or last_order_at < last_cart_activity_at)

)

select * from final
