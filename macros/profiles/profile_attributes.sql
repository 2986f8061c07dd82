{#- The sources of profile attributes, shared by int_profile_attributes (one row per observation) and
    int_golden_records (which also follows them row by row). -#}

{#- Per enabled source model: the (attribute, column) pairs it supplies, the column that says when, and
    the identifiers that attribute a row to a customer, strongest first (join alias, identifier type,
    column). Users and CRM contacts only count when their id is in the graph (inner joins). Deleted CRM
    contacts supply nothing. -#}
{% macro cdp_profile_sources() -%}
    {%- set sources = {
        'stg_segment__identifies': {
            'alias': 'identifies',
            'attributes': [('email', 'email'), ('phone', 'phone'), ('first_name', 'first_name'),
                           ('last_name', 'last_name'), ('city', 'address_city'), ('country', 'address_country')],
            'observed_at': 'occurred_at',
            'by': [('by_user', 'user_id', 'user_id'), ('by_email', 'email', 'email'),
                   ('by_device', 'anonymous_id', 'anonymous_id')],
            'join': 'left'},
        'stg_segment__users': {
            'alias': 'users',
            'attributes': [('email', 'email'), ('phone', 'phone'), ('first_name', 'first_name'),
                           ('last_name', 'last_name')],
            'observed_at': 'received_at',
            'by': [('by_user', 'user_id', 'user_id')],
            'join': 'inner'},
        'stg_crm__contacts': {
            'alias': 'contacts',
            'attributes': [('email', 'email'), ('phone', 'phone'), ('first_name', 'first_name'),
                           ('last_name', 'last_name'), ('company', 'company'), ('city', 'city'),
                           ('country', 'country'), ('lifecycle_stage', 'lifecycle_stage')],
            'observed_at': 'updated_at',
            'by': [('by_contact', 'crm_id', 'contact_id')],
            'join': 'inner',
            'where': 'not coalesce(contacts.is_deleted, false)'},
        'stg_shop__orders': {
            'alias': 'orders',
            'attributes': [('email', 'email'), ('phone', 'phone'), ('city', 'shipping_city'),
                           ('country', 'shipping_country')],
            'observed_at': 'created_at',
            'by': [('by_user', 'user_id', 'customer_id'), ('by_email', 'email', 'email')],
            'join': 'left'},
    } -%}
    {%- set enabled = {} -%}
    {%- for model, source in sources.items() if cdp_model_enabled(model) -%}
        {%- do enabled.update({model: source}) -%}
    {%- endfor -%}
    {{ return(enabled) }}
{%- endmacro %}

{#- One source's rows with the columns it supplies, `observed_at` and `attributed_customer_id` (from a
    CTE named `graph` over identity_graph); with fingerprint, also `row_fingerprint`, a hash of the
    row's attribute values and time (cdp_fingerprint). -#}
{% macro cdp_profile_source_rows(model, source, fingerprint=false) -%}
    {%- set alias = source['alias'] -%}
    {%- set columns = [] -%}
    {%- set owners = [] -%}
    {%- set joins = [] -%}
    {%- for attribute, column in source['attributes'] -%}
        {%- do columns.append(alias ~ '.' ~ column) -%}
    {%- endfor -%}
    {%- set observed_at = alias ~ '.' ~ source['observed_at'] -%}
    {%- set selected = columns + [observed_at ~ ' as observed_at'] -%}
    {%- if fingerprint -%}
        {%- do selected.append(cdp_fingerprint("'" ~ model ~ "'", columns + [observed_at]) ~ ' as row_fingerprint') -%}
    {%- endif -%}
    {%- for by_alias, identifier_type, column in source['by'] -%}
        {%- do owners.append(by_alias ~ '.customer_id') -%}
        {%- do joins.append(source['join'] ~ ' join graph as ' ~ by_alias ~ ' on ' ~ by_alias ~ ".identifier_type = '"
            ~ identifier_type ~ "' and " ~ alias ~ '.' ~ column ~ ' = ' ~ by_alias ~ '.identifier_value') -%}
    {%- endfor -%}
    {%- do selected.append('coalesce(' ~ owners | join(', ') ~ ') as attributed_customer_id') -%}
    {{ return('select ' ~ selected | join(', ') ~ ' from ' ~ ref(model) ~ ' as ' ~ alias ~ ' ' ~ joins | join(' ')
        ~ (' where ' ~ source['where'] if source.get('where') else '')) }}
{%- endmacro %}

{#- The observations in the rows of each source (a relation or CTE named after the source's alias, plus
    `suffix`): one branch per (source, attribute), rows of an attributed customer with a non-blank value. -#}
{% macro cdp_profile_observations(sources, suffix='') -%}
    {%- set branches = [] -%}
    {%- for model, source in sources.items() -%}
        {%- set relation = source['alias'] ~ suffix -%}
        {%- for attribute, column in source['attributes'] -%}
            {%- do branches.append(
                "select '" ~ model ~ "' as source_model, " ~ relation ~ ".attributed_customer_id as customer_id, '"
                ~ attribute ~ "' as attribute, cast(" ~ relation ~ "." ~ column ~ " as " ~ dbt.type_string()
                ~ ") as attribute_value, " ~ relation ~ ".observed_at from " ~ relation
                ~ " where " ~ relation ~ ".attributed_customer_id is not null and trim(cast(" ~ relation ~ "."
                ~ column ~ " as " ~ dbt.type_string() ~ ")) != ''") -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(branches | join('\n    union all\n    ')) }}
{%- endmacro %}
