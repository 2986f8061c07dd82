{#-
    One row per priority list (var cdp_segment_priority_lists) and customer: the customer lands in the
    first segment of the list they are a member of, so a journey never sends one person two competing
    messages. Holdouts keep their slot (is_holdout), so the list's control group stays unbiased.
-#}
{%- set lists = cdp_segment_priority_lists() %}

with

members as (

    select * from {{ ref('segment_members') }}

),

priorities as (
    {%- for list_name, segments in lists.items() %}
    {%- set outer = loop %}
    {%- for segment in segments %}
    select
        '{{ list_name }}' as list_name,
        '{{ segment }}' as segment_name,
        {{ loop.index }} as priority
    {%- if not (outer.last and loop.last) %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as list_name,
        cast(null as {{ dbt.type_string() }}) as segment_name,
        cast(null as integer) as priority
    where 1 = 0
    {%- endfor %}

),

ranked as (

    select
        priorities.list_name,
        priorities.priority,
        members.segment_name,
        members.customer_id,
        members.is_holdout,
        row_number() over (
            partition by priorities.list_name, members.customer_id order by priorities.priority
        ) as match_rank
    from members
    inner join priorities on members.segment_name = priorities.segment_name

),

final as (

    select
        list_name || ':' || customer_id as priority_member_id,
        list_name,
        customer_id,
        segment_name,
        priority,
        is_holdout
    from ranked
    where match_rank = 1

)

select * from final
