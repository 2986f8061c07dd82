{#- Consented to email marketing, still reachable, and never ordered. -#}

with

traits as (

    select * from {{ ref('customer_traits') }}

),

final as (

    select customer_id
    from traits
    where
        consent_email_marketing
        and email is not null
        and not has_unsubscribed
        and orders = 0

)

select * from final
