{#- Buyers whose churn-risk score is 0.7 or more (see customer_traits.churn_risk_reason). -#}

with

traits as (

    select * from {{ ref('customer_traits') }}

),

final as (

    select customer_id
    from traits
    where churn_risk_score >= 0.7

)

select * from final
