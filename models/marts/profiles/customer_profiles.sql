{#- One row per customer: customer_traits plus the segments the customer is in. -#}

with

traits as (

    select * from {{ ref('customer_traits') }}

),

members as (

    select * from {{ ref('segment_members') }}

),

segments as (

    select
        customer_id,
        {{ cdp_string_agg_distinct('segment_name') }} as segments
    from members
    where not is_holdout
    group by customer_id

),

final as (

    select
        traits.*,
        coalesce(segments.segments, '') as segments
    from traits
    left join segments on traits.customer_id = segments.customer_id

)

select * from final
