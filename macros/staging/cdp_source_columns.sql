{#-
    Column look-up for sources whose shape varies by loader and warehouse: Segment or RudderStack
    (traits as `email` or `context_traits_email`, an `event` column or not), lower-case names or the
    UPPER-CASE names of a Snowflake export. A model asks for a house column by a list of candidate
    source columns; it gets the ones the relation has (coalesced, in order), cast to the house type,
    or a typed null when it has none, so the model builds on every variant.
-#}

{#- The table behind source `source_name`.`table_name`. From the graph when the context has one;
    inside a dbt unit test it has not (and source() names the fixture CTE, whose columns are those of
    the real table), so the relation is rebuilt from the same vars the sources YAML reads. -#}
{% macro cdp_source_relation(source_name, table_name) -%}
    {%- set sources = (graph.get('sources') or {}).values() | selectattr('source_name', 'equalto', source_name)
        | selectattr('name', 'equalto', table_name) | list -%}
    {%- if sources -%}
        {{ return(api.Relation.create(
            database=sources[0].database, schema=sources[0].schema, identifier=sources[0].identifier)) }}
    {%- endif -%}
    {{ return(api.Relation.create(
        database=var('cdp_' ~ source_name ~ '_database', none) or target.database or none,
        schema=var('cdp_' ~ source_name ~ '_schema', source_name),
        identifier=var('cdp_' ~ source_name ~ '_' ~ table_name ~ '_identifier', table_name))) }}
{%- endmacro %}

{#- The columns of source `source_name`.`table_name` as {lower-case name: Column}; empty while parsing. -#}
{% macro cdp_source_columns(source_name, table_name) -%}
    {%- set columns = {} -%}
    {%- if execute -%}
        {%- set relation = cdp_source_relation(source_name, table_name) -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do columns.update({column.name | lower: column}) -%}
        {%- endfor -%}
        {%- if not columns -%}
            {{ exceptions.raise_compiler_error(
                "source " ~ source_name ~ "." ~ table_name ~ " (" ~ relation ~ ") does not exist or has no columns. "
                ~ "Load the raw data (`cdp generate`), point the source at your table with vars cdp_"
                ~ source_name ~ "_database, cdp_" ~ source_name ~ "_schema and cdp_" ~ source_name ~ "_"
                ~ table_name ~ "_identifier, or switch it off with var cdp_using_" ~ source_name
                ~ ("_" ~ table_name if source_name == 'segment' else "") ~ ": false.") }}
        {%- endif -%}
    {%- endif -%}
    {{ return(columns) }}
{%- endmacro %}

{#- The first existing candidates, coalesced and cast to `type` (string, timestamp, numeric, integer, boolean). -#}
{% macro cdp_column(columns, candidates, type='string') -%}
    {%- set found = [] -%}
    {%- for candidate in candidates -%}
        {%- if candidate | lower in columns -%}
            {%- do found.append(cdp_cast_column(columns[candidate | lower], type)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not found -%}
        {{- return('cast(null as ' ~ cdp_house_type(type) ~ ')') -}}
    {%- elif found | length == 1 -%}
        {{- return(found[0]) -}}
    {%- else -%}
        {{- return('coalesce(' ~ (found | join(', ')) ~ ')') -}}
    {%- endif -%}
{%- endmacro %}

{% macro cdp_house_type(type) -%}
    {%- set types = {
        'string': dbt.type_string(),
        'timestamp': dbt.type_timestamp(),
        'numeric': dbt.type_numeric(),
        'integer': dbt.type_bigint(),
        'boolean': dbt.type_boolean(),
    } -%}
    {%- if type not in types -%}
        {{ exceptions.raise_compiler_error(
            "cdp_column: unknown type '" ~ type ~ "'; use one of " ~ (types.keys() | join(', '))) }}
    {%- endif -%}
    {{- return(types[type]) -}}
{%- endmacro %}

{#- One source column cast to a house type; timestamps with a zone (or as text) become UTC without zone. -#}
{% macro cdp_cast_column(column, type) -%}
    {%- set quoted = adapter.quote(column.name) -%}
    {%- if type == 'timestamp' -%}
        {{- return(cdp_timestamp_utc(quoted, column.data_type)) -}}
    {%- else -%}
        {{- return('cast(' ~ quoted ~ ' as ' ~ cdp_house_type(type) ~ ')') -}}
    {%- endif -%}
{%- endmacro %}

{#- `expression` (of warehouse type `data_type`) as a timestamp without zone, in UTC. -#}
{% macro cdp_timestamp_utc(expression, data_type='timestamp') -%}
    {{ return(adapter.dispatch('cdp_timestamp_utc', 'cdp')(expression, data_type)) }}
{%- endmacro %}

{% macro default__cdp_timestamp_utc(expression, data_type) -%}
    {%- set kind = data_type | lower -%}
    {%- if 'with time zone' in kind or 'tz' in kind -%}
        cast({{ expression }} at time zone 'UTC' as {{ dbt.type_timestamp() }})
    {%- elif kind in ['text', 'string'] or 'char' in kind -%}
        cast(cast({{ expression }} as timestamp with time zone) at time zone 'UTC' as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast({{ expression }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__cdp_timestamp_utc(expression, data_type) -%}
    {%- set kind = data_type | lower -%}
    {%- if 'with time zone' in kind or 'timestamptz' in kind -%}
        timezone('UTC', {{ expression }})
    {%- elif kind in ['text', 'string'] or 'char' in kind -%}
        timezone('UTC', cast({{ expression }} as timestamptz))
    {%- else -%}
        cast({{ expression }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{% macro snowflake__cdp_timestamp_utc(expression, data_type) -%}
    {%- set kind = data_type | lower -%}
    {%- if 'tz' in kind or kind in ['text', 'string'] or 'char' in kind -%}
        convert_timezone('UTC', cast({{ expression }} as timestamp_tz))::timestamp_ntz
    {%- else -%}
        cast({{ expression }} as timestamp_ntz)
    {%- endif -%}
{%- endmacro %}
