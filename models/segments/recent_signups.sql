{#- Registered customers first seen in the last 30 days. -#}

with

traits as (

    select * from {{ ref('customer_traits') }}

),

final as (

    select customer_id
    from traits
    where
        is_registered
        and first_seen_at >= {{ dbt.dateadd('day', -30, 'as_of') }}

)

select * from final
