{#- Customers whose lifetime value, net of refunds, reaches var cdp_high_value_threshold. -#}

with

traits as (

    select * from {{ ref('customer_traits') }}

),

final as (

    select customer_id
    from traits
    where lifetime_value >= {{ var('cdp_high_value_threshold') }}

)

select * from final
