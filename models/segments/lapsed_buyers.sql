{#- Ordered before, but not in the last 180 days. -#}

with

traits as (

    select * from {{ ref('customer_traits') }}

),

final as (

    select customer_id
    from traits
    where
        orders > 0
        and days_since_last_order > 180

)

select * from final
