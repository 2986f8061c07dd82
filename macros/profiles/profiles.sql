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

{#- Attributes int_profile_attributes observes, so survivorship may pick one value of each. -#}
{% macro cdp_profile_attributes() -%}
    {{ return(['email', 'phone', 'first_name', 'last_name', 'company', 'city', 'country']) }}
{%- endmacro %}

{#- Stops the build on a survivorship rule for an attribute no source holds, or an unknown rule. -#}
{% macro cdp_check_survivorship() -%}
    {%- set known = cdp_profile_attributes() -%}
    {%- set rules = ['source_priority', 'most_recent', 'most_frequent'] -%}
    {%- set survivorship = var('cdp_survivorship') -%}
    {%- if survivorship is not mapping or not survivorship -%}
        {% do exceptions.raise_compiler_error(
            "var cdp_survivorship must map attributes to rules, e.g. {email: most_recent}; got: " ~ survivorship) %}
    {%- endif -%}
    {%- for attribute, rule in survivorship.items() -%}
        {%- if attribute not in known -%}
            {% do exceptions.raise_compiler_error(
                "var cdp_survivorship: no source holds attribute '" ~ attribute ~ "'; use one of "
                ~ known | join(', ') ~ " (or add it to models/intermediate/profiles/int_profile_attributes.sql)") %}
        {%- endif -%}
        {%- if rule not in rules -%}
            {% do exceptions.raise_compiler_error(
                "var cdp_survivorship: unknown rule '" ~ rule ~ "' for " ~ attribute ~ "; use one of "
                ~ rules | join(', ')) %}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}
