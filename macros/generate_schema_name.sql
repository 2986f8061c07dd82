{#-
    Models land in the schema their folder names (staging, intermediate, marts, segments) rather than
    dbt's default "<target schema>_<custom schema>", so the reverse-ETL layer and users find them at
    fixed names. A target on a shared warehouse can opt back into prefixing with the var below.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif var('cdp_prefix_schemas', false) -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
