{#-
    One row per (customer, attribute, observed value): every name, email, phone, company and address
    value any source holds for a customer, with the source and when it was observed. Survivorship in
    customer_traits picks one value per attribute.
-#}

with

graph as (

    select * from {{ ref('identity_graph') }}

),

identifies as (

    select * from {{ ref('stg_segment__identifies') }}

),
{%- if cdp_model_enabled('stg_crm__contacts') %}

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),
{%- endif %}
{%- if cdp_model_enabled('stg_shop__orders') %}

orders as (

    select * from {{ ref('stg_shop__orders') }}

),
{%- endif %}

observed as (

    {%- set identify_attributes = ['email', 'phone', 'first_name', 'last_name'] %}
    {%- for attribute in identify_attributes %}
    select
        'stg_segment__identifies' as source_model,
        coalesce(by_user.customer_id, by_device.customer_id) as customer_id,
        '{{ attribute }}' as attribute,
        cast(identifies.{{ attribute }} as {{ dbt.type_string() }}) as attribute_value,
        identifies.occurred_at as observed_at
    from identifies
    left join graph as by_user
        on by_user.identifier_type = 'user_id' and by_user.identifier_value = identifies.user_id
    left join graph as by_device
        on by_device.identifier_type = 'anonymous_id' and by_device.identifier_value = identifies.anonymous_id
    where identifies.{{ attribute }} is not null
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- if cdp_model_enabled('stg_crm__contacts') %}
    {%- for attribute in ['email', 'phone', 'first_name', 'last_name', 'company', 'city', 'country', 'lifecycle_stage'] %}
    union all
    select
        'stg_crm__contacts',
        by_contact.customer_id,
        '{{ attribute }}',
        cast(contacts.{{ attribute }} as {{ dbt.type_string() }}),
        contacts.updated_at
    from contacts
    inner join graph as by_contact
        on by_contact.identifier_type = 'crm_id' and by_contact.identifier_value = contacts.contact_id
    where contacts.{{ attribute }} is not null
    {%- endfor %}
    {%- endif %}
    {%- if cdp_model_enabled('stg_shop__orders') %}
    {%- for attribute, column in [('email', 'email'), ('phone', 'phone'), ('city', 'shipping_city'), ('country', 'shipping_country')] %}
    union all
    select
        'stg_shop__orders',
        coalesce(by_user.customer_id, by_email.customer_id),
        '{{ attribute }}',
        cast(orders.{{ column }} as {{ dbt.type_string() }}),
        orders.created_at
    from orders
    left join graph as by_user
        on by_user.identifier_type = 'user_id' and by_user.identifier_value = orders.customer_id
    left join graph as by_email
        on by_email.identifier_type = 'email' and by_email.identifier_value = orders.email
    where orders.{{ column }} is not null
    {%- endfor %}
    {%- endif %}

),

final as (

    select
        customer_id,
        attribute,
        attribute_value,
        source_model,
        observed_at
    from observed
    where customer_id is not null and trim(attribute_value) <> ''

)

select * from final
