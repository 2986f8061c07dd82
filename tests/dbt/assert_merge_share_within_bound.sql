-- Quality gate: the share of customers merged into another in this build stays under
-- var cdp_identity_max_merge_share. A sudden wave of merges usually means a new junk value or a
-- misconfigured identifier column. Below var cdp_identity_merge_gate_floor merges the gate never fires,
-- so small projects are not stopped by a handful of ordinary merges.

with

latest as (

    select * from {{ ref('customer_id_changes') }}
    where build_id = '{{ invocation_id }}' and reason = 'merge'

),

merged as (

    select count(distinct old_customer_id) as merged_customers from latest

),

customers as (

    select count(distinct customer_id) as customers from {{ ref('identity_graph') }}

)

select
    merged.merged_customers,
    customers.customers
from customers
cross join merged
where
    merged.merged_customers > {{ var('cdp_identity_merge_gate_floor') }}
    and merged.merged_customers > {{ var('cdp_identity_max_merge_share') }} * customers.customers
