-- Quality gate: no customer is larger than var cdp_identity_max_cluster_size identifiers. A giant
-- cluster means junk or a hub slipped through; better to stop than to sync one "person" to every ad
-- platform.

select
    customer_id,
    count(*) as identifiers
from {{ ref('identity_graph') }}
group by customer_id
having count(*) > {{ var('cdp_identity_max_cluster_size') }}
