-- Quality gate: no customer holds more identifiers of a type than var cdp_identifier_limits allows
-- (identifiers joined by an always_merge override count once). Fails the build, and skips everything
-- downstream, syncs included, when it returns rows.
{%- set limits = var('cdp_identifier_limits', {}) %}

with

graph as (

    select * from {{ ref('identity_graph') }}

),

overrides as (

    select * from {{ ref('identity_overrides') }}
    where rule = 'always_merge'

),

merged_groups as (

    select identifier_type_a as identifier_type, identifier_value_a as identifier_value,
        identifier_type_a || ':' || least(identifier_value_a, identifier_value_b) as group_key
    from overrides
    where identifier_type_a = identifier_type_b
    union all
    select identifier_type_b, identifier_value_b,
        identifier_type_b || ':' || least(identifier_value_a, identifier_value_b)
    from overrides
    where identifier_type_a = identifier_type_b

),

counted as (

    select
        graph.customer_id,
        graph.identifier_type,
        count(distinct coalesce(merged_groups.group_key, graph.identifier_value)) as identifiers
    from graph
    left join merged_groups
        on merged_groups.identifier_type = graph.identifier_type
        and merged_groups.identifier_value = graph.identifier_value
    {%- if limits %}
    where graph.identifier_type in ({% for t in limits %}'{{ t }}'{{ ", " if not loop.last }}{% endfor %})
    {%- else %}
    where 1 = 0
    {%- endif %}
    group by graph.customer_id, graph.identifier_type

)

select *
from counted
where identifiers > case identifier_type
    {%- for identifier_type, limit in limits.items() %}
    when '{{ identifier_type }}' then {{ limit }}
    {%- endfor %}
    else 1000000000
end
