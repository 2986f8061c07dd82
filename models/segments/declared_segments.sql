{#-
    One row per segment declared in var cdp_yaml_segments and customer in it: each declaration's
    where runs over customer_traits. The declarations (with description and owner) are copied into
    this model's meta, so the manifest lists them next to the segment models.
-#}
{%- set segments = cdp_yaml_segments() %}
{{ config(meta={'declared_segments': segments}) }}

with

traits as (

    select * from {{ ref('customer_traits') }}

),

final as (
    {%- for segment in segments %}

        select
            '{{ segment.name }}' as segment_name,
            customer_id
        from traits
        where {{ segment.where }}
        {%- if not loop.last %}

    union all
    {%- endif %}
    {%- else %}

    select
        cast(null as {{ dbt.type_string() }}) as segment_name,
        customer_id
    from traits
    where 1 = 0
    {%- endfor %}

)

select * from final
