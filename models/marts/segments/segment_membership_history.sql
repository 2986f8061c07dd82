{#-
    One row per stay of a customer in a segment: when they entered and, once they left, when they
    exited. Kept by every build (incremental): new members open a row, departed members close theirs.
-#}
{{ config(materialized='incremental', unique_key='membership_id', incremental_strategy='delete+insert') }}

{%- set build_at = "cast('" ~ run_started_at.strftime("%Y-%m-%d %H:%M:%S") ~ "' as " ~ dbt.type_timestamp() ~ ")" %}

with

members as (

    select
        segment_name,
        customer_id
    from {{ ref('segment_members') }}

),

{% if is_incremental() %}
    open_stays as (

        select * from {{ this }}
        where exited_at is null

    ),

    exited as (

        select
            open_stays.membership_id,
            open_stays.segment_name,
            open_stays.customer_id,
            open_stays.entered_at,
            {{ build_at }} as exited_at
        from open_stays
        left join members
            on
                open_stays.segment_name = members.segment_name
                and open_stays.customer_id = members.customer_id
        where members.customer_id is null

    ),

    entered as (

        select
            members.segment_name,
            members.customer_id
        from members
        left join open_stays
            on
                members.segment_name = open_stays.segment_name
                and members.customer_id = open_stays.customer_id
        where open_stays.customer_id is null

    ),
{% else %}
exited as (

    select
        cast(null as {{ dbt.type_string() }}) as membership_id,
        cast(null as {{ dbt.type_string() }}) as segment_name,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_timestamp() }}) as entered_at,
        cast(null as {{ dbt.type_timestamp() }}) as exited_at
    from members
    where 1 = 0

),

entered as (

    select segment_name, customer_id from members

),
{% endif %}

final as (

    select
        membership_id,
        segment_name,
        customer_id,
        entered_at,
        exited_at
    from exited
    union all
    select
        segment_name || ':' || customer_id || ':' || '{{ run_started_at.strftime("%Y%m%d%H%M%S") }}' as membership_id,
        segment_name,
        customer_id,
        {{ build_at }} as entered_at,
        cast(null as {{ dbt.type_timestamp() }}) as exited_at
    from entered

)

select * from final
