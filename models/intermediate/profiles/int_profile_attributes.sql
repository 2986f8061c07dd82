{#-
    One row per (customer, attribute, observed value): every name, email, phone, company and address
    value any source holds for a customer, with the source and when it was observed. Survivorship in
    customer_traits picks one value per attribute. Deleted CRM contacts supply nothing.

    A view: customer_traits is its only reader and aggregates it once per build, so writing its rows
    (about ten per customer) would cost more than computing them; querying it still shows where a
    profile value came from.
-#}
{{ config(materialized='view') }}

{#- Per source: the (attribute, column) pairs it supplies, the column that says when, and the
    identifiers that attribute a row to a customer, strongest first (join alias, identifier type,
    column). Users and CRM contacts only count when their id is in the graph (inner joins). -#}
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
} %}
{%- set enabled = [] %}
{%- for model in sources if cdp_model_enabled(model) %}{% do enabled.append(model) %}{% endfor %}

with

graph as (

    select * from {{ ref('identity_graph') }}

),
{%- for model in enabled %}
    {%- set source = sources[model] %}
    {%- set alias = source['alias'] %}
    {%- set owners = [] %}
    {%- for by_alias, identifier_type, column in source['by'] %}
        {%- do owners.append(by_alias ~ '.customer_id') %}
    {%- endfor %}

    {{ alias }} as (
        {#- Each source is attributed once, with only the columns it supplies, then read once per
            attribute. #}
        select
            {%- for attribute, column in source['attributes'] %}
                {{ alias }}.{{ column }},
            {%- endfor %}
            {{ alias }}.{{ source['observed_at'] }} as observed_at,
            coalesce({{ owners | join(', ') }}) as attributed_customer_id
        from
            {{ ref(model) }} as {{ alias }}
            {%- for by_alias, identifier_type, column in source['by'] %}
            {{ source['join'] }} join graph as {{ by_alias }}
                on
                    {{ by_alias }}.identifier_type = '{{ identifier_type }}'
                    and {{ alias }}.{{ column }} = {{ by_alias }}.identifier_value
                {%- endfor %}
        {%- if source.get('where') %}
            where {{ source['where'] }}
        {%- endif %}

    ),
{%- endfor %}

observed as (

    {#- One branch per (enabled source, attribute). -#}
    {%- set branches = [] %}
    {%- for model in enabled %}
        {%- set alias = sources[model]['alias'] %}
        {%- for attribute, column in sources[model]['attributes'] %}
            {%- set branch %}
    select
        '{{ model }}' as source_model,
        {{ alias }}.attributed_customer_id as customer_id,
        '{{ attribute }}' as attribute,
        cast({{ alias }}.{{ column }} as {{ dbt.type_string() }}) as attribute_value,
        {{ alias }}.observed_at
    from {{ alias }}
    where {{ alias }}.{{ column }} is not null
            {%- endset %}
            {%- do branches.append(branch) %}
        {%- endfor %}
    {%- endfor %}
    {{ branches | join('\n    union all\n') }}

),

final as (

    select
        customer_id,
        attribute,
        attribute_value,
        source_model,
        observed_at
    from observed
    where customer_id is not null and trim(attribute_value) != ''

)

select * from final
