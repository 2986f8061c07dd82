{#- The moment traits are computed as of: var cdp_as_of, else the latest event in customer_events. -#}
{% macro cdp_as_of() -%}
    {%- if var('cdp_as_of', none) -%}
        cast('{{ var("cdp_as_of") }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        (select max(occurred_at) from {{ ref('customer_events') }})
    {%- endif -%}
{%- endmacro %}

{#- Ordering that puts the surviving value first, for a survivorship rule. -#}
{% macro cdp_survivorship_order(rule) -%}
    {%- if rule == 'source_priority' -%}
        case source_model
        {%- for source_model in var('cdp_source_priority') %}
            when '{{ source_model }}' then {{ loop.index }}
        {%- endfor %}
            else 999
        end, observed_at desc, attribute_value
    {%- elif rule == 'most_recent' -%}
        observed_at desc, attribute_value
    {%- elif rule == 'most_frequent' -%}
        value_count desc, observed_at desc, attribute_value
    {%- else -%}
        {% do exceptions.raise_compiler_error(
            "var cdp_survivorship: unknown rule '" ~ rule ~ "'; use source_priority, most_recent or most_frequent") %}
    {%- endif -%}
{%- endmacro %}
