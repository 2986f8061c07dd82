{#- Helpers that turn the identity vars into SQL. -#}

{#- 1 for the strongest identifier type in var cdp_identifier_priority, 2 for the next, ... -#}
{% macro cdp_identifier_rank(type_column) -%}
    case {{ type_column }}
    {%- for identifier_type in var('cdp_identifier_priority') %}
        when '{{ identifier_type }}' then {{ loop.index }}
    {%- endfor %}
        else {{ var('cdp_identifier_priority') | length + 1 }}
    end
{%- endmacro %}

{#- The hub threshold of an identifier type (var cdp_identity_hub_thresholds, else the default). -#}
{#- The when-clauses are built before the if: sqlfluff 4 mis-tracks a for loop nested in an if/else
    inside a macro and reports indentation errors on every line after it. -#}
{% macro cdp_hub_threshold(type_column) -%}
    {%- set whens = [] -%}
    {%- for identifier_type, threshold in (var('cdp_identity_hub_thresholds', {}) or {}).items() -%}
        {%- do whens.append("when '" ~ identifier_type ~ "' then " ~ threshold) -%}
    {%- endfor -%}
    {%- if whens -%}
        case {{ type_column }} {{ whens | join(' ') }} else {{ var('cdp_identity_hub_threshold') }} end
    {%- else -%}
        {{ var('cdp_identity_hub_threshold') }}
    {%- endif -%}
{%- endmacro %}

{#- Whether a staging model's source is switched on (vars cdp_using_<source>, cdp_using_<source>_<table>). -#}
{% macro cdp_model_enabled(model_name) -%}
    {%- set parts = model_name.replace('stg_', '', 1).split('__') -%}
    {%- if parts | length < 2 -%}{{ return(true) }}{%- endif -%}
    {%- set source_name, table_name = parts[0], parts[1] -%}
    {{ return(var('cdp_using_' ~ source_name, true) and var('cdp_using_' ~ source_name ~ '_' ~ table_name, true)) }}
{%- endmacro %}

{#- The identity sources that are switched on. -#}
{% macro cdp_identity_sources() -%}
    {%- set enabled = [] -%}
    {%- for source in var('cdp_identity_sources') -%}
        {%- for key in ['model', 'record_key', 'observed_at', 'identifiers'] -%}
            {%- if key not in source -%}
                {% do exceptions.raise_compiler_error(
                    "var cdp_identity_sources: entry " ~ loop.index ~ " (" ~ source ~ ") lacks '" ~ key
                    ~ "'; each entry needs model, record_key, observed_at and identifiers {type: column}") %}
            {%- endif -%}
        {%- endfor -%}
        {%- for identifier_type in source['identifiers'] -%}
            {%- if identifier_type not in var('cdp_identifier_priority') -%}
                {% do exceptions.raise_compiler_error(
                    "var cdp_identity_sources: model " ~ source['model'] ~ " declares identifier type '"
                    ~ identifier_type ~ "', which is not in var cdp_identifier_priority "
                    ~ var('cdp_identifier_priority') ~ "; add it there or fix the type") %}
            {%- endif -%}
        {%- endfor -%}
        {%- if cdp_model_enabled(source['model']) -%}{%- do enabled.append(source) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(enabled) }}
{%- endmacro %}
