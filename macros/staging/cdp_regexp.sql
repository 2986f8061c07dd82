{#-
    Regular-expression pieces the normalisation macros need. Patterns stay within the subset that
    RE2 (DuckDB, BigQuery), POSIX (Postgres, Snowflake) and Java (Spark) agree on: bracket classes,
    anchors, groups, `?`, `*`, `+` and `{m,n}`; no `\d`, `\s` or look-arounds. Replacements refer to
    groups as `\1`; engines that spell it differently translate.
-#}

{#- Replace every match of `pattern` in `expression` with `replacement`. -#}
{% macro cdp_regexp_replace(expression, pattern, replacement='') -%}
    {{ return(adapter.dispatch('cdp_regexp_replace', 'cdp')(expression, pattern, replacement)) }}
{%- endmacro %}

{% macro default__cdp_regexp_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{% macro duckdb__cdp_regexp_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{% macro postgres__cdp_regexp_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{% macro snowflake__cdp_regexp_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement | replace("\\", "\\\\") }}')
{%- endmacro %}

{% macro bigquery__cdp_regexp_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement | replace("\\", "\\\\") }}')
{%- endmacro %}

{% macro spark__cdp_regexp_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ modules.re.sub("\\\\([0-9])", "$\\1", replacement) }}')
{%- endmacro %}

{#- `expression` when the whole value matches `pattern`, else null (one reference to the expression). -#}
{% macro cdp_regexp_full_match_or_null(expression, pattern) -%}
    {{ return(adapter.dispatch('cdp_regexp_full_match_or_null', 'cdp')(expression, pattern)) }}
{%- endmacro %}

{% macro default__cdp_regexp_full_match_or_null(expression, pattern) -%}
    regexp_substr({{ expression }}, '^({{ pattern }})$')
{%- endmacro %}

{% macro duckdb__cdp_regexp_full_match_or_null(expression, pattern) -%}
    nullif(regexp_extract({{ expression }}, '^({{ pattern }})$'), '')
{%- endmacro %}

{% macro postgres__cdp_regexp_full_match_or_null(expression, pattern) -%}
    substring({{ expression }} from '^({{ pattern }})$')
{%- endmacro %}

{% macro bigquery__cdp_regexp_full_match_or_null(expression, pattern) -%}
    regexp_extract({{ expression }}, '^({{ pattern }})$')
{%- endmacro %}

{% macro spark__cdp_regexp_full_match_or_null(expression, pattern) -%}
    nullif(regexp_extract({{ expression }}, '^({{ pattern }})$', 1), '')
{%- endmacro %}
