-- Quality gate: the share of customers merged into another in this build stays under
-- var cdp_identity_max_merge_share. A sudden wave of merges usually means a new junk value or a
-- misconfigured identifier column. Below var cdp_identity_merge_gate_floor merges the gate never fires,
-- so small projects are not stopped by a handful of ordinary merges.

with

latest as (

    select * from {{ ref('customer_id_changes') }}
    where build_id = '{{ invocation_id }}' and reason = 'merge'

),

customers as (

    select count(distinct customer_id) as customers from {{ ref('identity_graph') }}

)

select
    (select count(distinct old_customer_id) from latest) as merged_customers,
    customers.customers
from customers
where (select count(distinct old_customer_id) from latest) > {{ var('cdp_identity_merge_gate_floor') }}
    and (select count(distinct old_customer_id) from latest) > {{ var('cdp_identity_max_merge_share') }} * customers.customers
