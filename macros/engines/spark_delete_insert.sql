{#-
    The delete+insert incremental strategy on Spark tables in Parquet (customer_events and
    segment_membership_history use it), and its variant cdp_replace_keys (customer_sessions; see
    macros/incremental/replace_keys.sql). dbt-spark offers delete+insert only through MERGE, which
    needs Delta, Iceberg or Hudi; a Parquet table cannot delete rows, nor be overwritten by a query
    that reads it. So the rows to keep (the table's rows whose key the new batch does not carry, plus
    the batch but for cdp_replace_keys' tombstones) are written to a scratch table first, then copied
    over the target, and the scratch table is dropped.

    These two macros take the place of dbt-spark's own (a root project's macros win over an adapter's);
    every other strategy is handed back to dbt-spark unchanged. On Databricks or a Delta table prefer
    incremental_strategy='merge' (set it per model with a config override).
-#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) %}
    {%- if raw_strategy in ('delete+insert', 'cdp_replace_keys') -%}
        {{ return(raw_strategy) }}
    {%- endif -%}
    {{ return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) }}
{% endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) %}
    {%- if strategy not in ('delete+insert', 'cdp_replace_keys') -%}
        {{ return(dbt.dbt_spark_get_incremental_sql(
            strategy, source, target, existing, unique_key, incremental_predicates)) }}
    {%- endif -%}
    {%- if not unique_key -%}
        {% do exceptions.raise_compiler_error(
            "incremental_strategy '" ~ strategy ~ "' on Spark needs a unique_key (model " ~ target ~ ")") %}
    {%- endif -%}
    {%- set inserted = '' -%}
    {%- if strategy == 'cdp_replace_keys' -%}
        {%- set inserted = ' where ' ~ cdp_replace_keys_config(unique_key) ~ ' is not null' -%}
    {%- endif -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | join(', ') -%}
    {%- set keep = target.incorporate(path={'identifier': target.identifier ~ '__dbt_keep'}) -%}
    {%- set matches = [] -%}
    {%- for key in keys -%}
        {%- do matches.append('batch.' ~ key ~ ' = kept.' ~ key) -%}
    {%- endfor -%}
    {%- if execute -%}
        {% do run_query('drop table if exists ' ~ keep) %}
        {% do run_query(
            'create table ' ~ keep ~ ' using parquet as
             select ' ~ columns ~ ' from ' ~ target ~ ' as kept
             where not exists (select 1 from ' ~ source ~ ' as batch where ' ~ matches | join(' and ') ~ ')
             union all
             select ' ~ columns ~ ' from ' ~ source ~ inserted) %}
        {% do run_query('insert overwrite table ' ~ target ~ ' select ' ~ columns ~ ' from ' ~ keep) %}
    {%- endif -%}
    drop table if exists {{ keep }}
{% endmacro %}
