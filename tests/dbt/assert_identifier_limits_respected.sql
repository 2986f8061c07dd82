-- Quality gate: no customer holds more identifiers of a type than var cdp_identifier_limits allows.
-- Fails the build (and skips everything downstream, syncs included) when it returns rows.
{%- set limits = var('cdp_identifier_limits', {}) %}

select
    customer_id,
    identifier_type,
    count(*) as identifiers
from {{ ref('identity_graph') }}
{%- if limits %}
where identifier_type in ({% for t in limits %}'{{ t }}'{{ ", " if not loop.last }}{% endfor %})
{%- else %}
where 1 = 0
{%- endif %}
group by customer_id, identifier_type
having count(*) > case identifier_type
    {%- for identifier_type, limit in limits.items() %}
    when '{{ identifier_type }}' then {{ limit }}
    {%- endfor %}
    else 1000000000
end
