{#-
    Identifier clean-up shared by every staging model: trim, and turn the placeholder values that
    forms, SDKs and exports write when they have nothing (`null`, `undefined`, `n/a`, `-1`, `0000`,
    empty strings, ...) into a real null, so that identity stitching never links people through them.
    Case is kept: user ids and anonymous ids are case-sensitive.
-#}

{#- The placeholder values, compared lower-cased and trimmed. Extend with var `cdp_junk_identifiers`. -#}
{% macro cdp_junk_identifier_values() -%}
    {%- set builtin = [
        '', 'null', 'nil', 'none', 'undefined', 'nan', 'n/a', 'na', 'n.a.', '-', '--', '.', '?',
        'unknown', 'not set', '(not set)', 'not available', 'anonymous', 'guest', 'test', 'xxx',
        'false', 'true', '0', '-1', '00', '000', '0000', '00000', '000000',
        '00000000-0000-0000-0000-000000000000', '[object object]', '{}', '[]',
    ] -%}
    {{ return(builtin + var('cdp_junk_identifiers', [])) }}
{%- endmacro %}

{#- A SQL list literal of lower-cased strings: ('a', 'b'). -#}
{% macro cdp_string_list(values) -%}
    ({%- for value in values -%}
        '{{ value | lower | replace("'", "''") }}'{{ ", " if not loop.last }}
    {%- endfor -%})
{%- endmacro %}

{#- `column` as a trimmed string, or null when it is empty or a placeholder (or one of `extra_values`). -#}
{% macro cdp_clean_identifier(column, extra_values=[]) -%}
    {{ return(adapter.dispatch('cdp_clean_identifier', 'cdp')(column, extra_values)) }}
{%- endmacro %}

{% macro default__cdp_clean_identifier(column, extra_values=[]) -%}
    {%- set trimmed = 'trim(cast(' ~ column ~ ' as ' ~ dbt.type_string() ~ '))' -%}
    case
        when lower({{ trimmed }}) in {{ cdp_string_list(cdp_junk_identifier_values() + extra_values) }} then null
        else {{ trimmed }}
    end
{%- endmacro %}
