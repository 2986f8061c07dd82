{#- Small cross-database pieces the identity macros need, dispatched per engine. -#}

{#- A 64-bit integer key for an (identifier type, value) pair. -#}
{% macro cdp_identifier_key(type_expr, value_expr) -%}
    {{ return(adapter.dispatch('cdp_identifier_key', 'cdp')(type_expr, value_expr)) }}
{%- endmacro %}

{% macro default__cdp_identifier_key(type_expr, value_expr) -%}
    ('x' || substr(md5({{ type_expr }} || ':' || {{ value_expr }}), 1, 15))::bit(60)::bigint
{%- endmacro %}

{% macro duckdb__cdp_identifier_key(type_expr, value_expr) -%}
    (hash({{ type_expr }} || ':' || {{ value_expr }}) >> 1)::bigint
{%- endmacro %}

{% macro spark__cdp_identifier_key(type_expr, value_expr) -%}
    xxhash64(concat({{ type_expr }}, ':', {{ value_expr }}))
{%- endmacro %}

{#- A hash of an integer column under a seed: a fresh random order of the nodes for each round. -#}
{% macro cdp_seeded_hash(column, seed) -%}
    {{ return(adapter.dispatch('cdp_seeded_hash', 'cdp')(column, seed)) }}
{%- endmacro %}

{% macro default__cdp_seeded_hash(column, seed) -%}
    hashint8extended({{ column }}, {{ seed }})
{%- endmacro %}

{% macro duckdb__cdp_seeded_hash(column, seed) -%}
    hash({{ column }}, {{ seed }})
{%- endmacro %}

{% macro spark__cdp_seeded_hash(column, seed) -%}
    xxhash64({{ column }}, {{ seed }})
{%- endmacro %}

{#- The value of `value` on the row where `key` is smallest, as an aggregate; rows where `value` is
    null are skipped (DuckDB's arg_min does so, and the other engines are told to). -#}
{% macro cdp_arg_min(value, key) -%}
    {{ return(adapter.dispatch('cdp_arg_min', 'cdp')(value, key)) }}
{%- endmacro %}

{% macro default__cdp_arg_min(value, key) -%}
    (array_agg({{ value }} order by {{ key }}, {{ value }}) filter (where {{ value }} is not null))[1]
{%- endmacro %}

{% macro duckdb__cdp_arg_min(value, key) -%}
    arg_min({{ value }}, {{ key }})
{%- endmacro %}

{% macro spark__cdp_arg_min(value, key) -%}
    min_by({{ value }}, case when {{ value }} is not null then {{ key }} end)
{%- endmacro %}

{#- The value on the first row (non-null values only) among those meeting `condition`, rows ordered by
    `keys`: a list of SQL expressions, each ascending (negate one to sort it descending; see
    cdp_epoch_microseconds for timestamps). Ties on every key go to the smallest value. -#}
{% macro cdp_first_by(value, keys, condition) -%}
    {{ return(adapter.dispatch('cdp_first_by', 'cdp')(value, keys, condition)) }}
{%- endmacro %}

{% macro default__cdp_first_by(value, keys, condition) -%}
    (array_agg({{ value }} order by {{ keys | join(', ') }}, {{ value }})
        filter (where {{ condition }} and {{ value }} is not null))[1]
{%- endmacro %}

{% macro duckdb__cdp_first_by(value, keys, condition) -%}
    {%- set fields = [] -%}
    {%- for key in keys + [value] -%}{%- do fields.append("'k" ~ loop.index ~ "': " ~ key) -%}{%- endfor -%}
    arg_min({{ value }}, { {{- fields | join(', ') -}} }) filter (where {{ condition }} and {{ value }} is not null)
{%- endmacro %}

{% macro spark__cdp_first_by(value, keys, condition) -%}
    min_by({{ value }}, struct({{ (keys + [value]) | join(', ') }}))
        filter (where {{ condition }} and {{ value }} is not null)
{%- endmacro %}

{#- A timestamp as a number of microseconds, to sort on (negated: latest first). -#}
{% macro cdp_epoch_microseconds(timestamp) -%}
    {{ return(adapter.dispatch('cdp_epoch_microseconds', 'cdp')(timestamp)) }}
{%- endmacro %}

{% macro default__cdp_epoch_microseconds(timestamp) -%}
    (extract(epoch from {{ timestamp }}) * 1000000)
{%- endmacro %}

{% macro duckdb__cdp_epoch_microseconds(timestamp) -%}
    epoch_us({{ timestamp }})
{%- endmacro %}

{% macro spark__cdp_epoch_microseconds(timestamp) -%}
    unix_micros({{ timestamp }})
{%- endmacro %}

{#- arg_min for the contraction: the bigint `value` on the row where the `key` from cdp_seeded_hash is
    smallest. DuckDB packs both into one unsigned 128-bit integer (hash high, value low) and takes a
    plain min, which aggregates faster than arg_min; the other engines use cdp_arg_min. -#}
{% macro cdp_arg_min_by_hash(value, key) -%}
    {{ return(adapter.dispatch('cdp_arg_min_by_hash', 'cdp')(value, key)) }}
{%- endmacro %}

{% macro default__cdp_arg_min_by_hash(value, key) -%}
    {{ cdp_arg_min(value, key) }}
{%- endmacro %}

{% macro duckdb__cdp_arg_min_by_hash(value, key) -%}
    cast(cast(min((cast({{ key }} as uhugeint) << 64)
                  | cast(cast({{ value }} as hugeint) + 9223372036854775808 as uhugeint))
              & cast(18446744073709551615 as uhugeint) as hugeint) - 9223372036854775808 as bigint)
{%- endmacro %}

{#- Full-match regular expression test. -#}
{% macro cdp_regex_matches(value, pattern) -%}
    {{ return(adapter.dispatch('cdp_regex_matches', 'cdp')(value, pattern)) }}
{%- endmacro %}

{% macro default__cdp_regex_matches(value, pattern) -%}
    ({{ value }} ~ {{ pattern }})
{%- endmacro %}

{% macro duckdb__cdp_regex_matches(value, pattern) -%}
    regexp_matches({{ value }}, {{ pattern }})
{%- endmacro %}

{% macro spark__cdp_regex_matches(value, pattern) -%}
    ({{ value }} rlike {{ pattern }})
{%- endmacro %}

{#- Replace a scratch table used inside a model's loop (one statement per call, for Spark). -#}
{% macro cdp_scratch_table(relation_name, sql) -%}
    {% do run_query('drop table if exists ' ~ relation_name) %}
    {% do run_query(adapter.dispatch('cdp_create_table_as_sql', 'cdp')(relation_name, sql)) %}
{%- endmacro %}

{% macro default__cdp_create_table_as_sql(relation_name, sql) -%}
    create table {{ relation_name }} as {{ sql }}
{%- endmacro %}

{% macro spark__cdp_create_table_as_sql(relation_name, sql) -%}
    create table {{ relation_name }} using parquet as {{ sql }}
{%- endmacro %}

{#- Distinct values of a column as one sorted, comma-separated string (an aggregate). -#}
{% macro cdp_string_agg_distinct(column) -%}
    {{ return(adapter.dispatch('cdp_string_agg_distinct', 'cdp')(column)) }}
{%- endmacro %}

{% macro default__cdp_string_agg_distinct(column) -%}
    string_agg(distinct {{ column }}, ',' order by {{ column }})
{%- endmacro %}

{% macro spark__cdp_string_agg_distinct(column) -%}
    array_join(array_sort(collect_set({{ column }})), ',')
{%- endmacro %}

{#- SQL that replaces a table with a query's result (for hooks). -#}
{% macro cdp_replace_table(relation_name, sql) -%}
    {{ return(adapter.dispatch('cdp_replace_table', 'cdp')(relation_name, sql)) }}
{%- endmacro %}

{% macro default__cdp_replace_table(relation_name, sql) -%}
    drop table if exists {{ relation_name }};
    create table {{ relation_name }} as {{ sql }}
{%- endmacro %}

{% macro duckdb__cdp_replace_table(relation_name, sql) -%}
    create or replace table {{ relation_name }} as {{ sql }}
{%- endmacro %}

{#- Spark runs one statement per call and has no `create or replace` for Parquet tables: the drop
    runs here (hooks render when they run), the create is the hook's statement. -#}
{% macro spark__cdp_replace_table(relation_name, sql) -%}
    {%- if execute %}{% do run_query('drop table if exists ' ~ relation_name) %}{% endif -%}
    create table {{ relation_name }} using parquet as {{ sql }}
{%- endmacro %}
