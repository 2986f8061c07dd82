-- customer_profiles has exactly one row per customer of identity_graph, and no other rows.

with

graph_customers as (

    select distinct customer_id from {{ ref('identity_graph') }}

),

profiles as (

    select
        customer_id,
        count(*) as profile_rows
    from {{ ref('customer_profiles') }}
    group by customer_id

)

select
    coalesce(graph_customers.customer_id, profiles.customer_id) as customer_id,
    coalesce(profiles.profile_rows, 0) as profile_rows
from graph_customers
full outer join profiles on graph_customers.customer_id = profiles.customer_id
where profiles.customer_id is null or graph_customers.customer_id is null or profiles.profile_rows != 1
