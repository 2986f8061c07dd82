{#-
    One row per (customer, attribute, observed value): every name, email, phone, company and address
    value any source holds for a customer, with the source and when it was observed. Survivorship in
    customer_traits picks one value per attribute. Deleted CRM contacts supply nothing.
-#}

with

graph as (

    select * from {{ ref('identity_graph') }}

),
{%- if cdp_model_enabled('stg_segment__identifies') %}

    identifies as (

        select * from {{ ref('stg_segment__identifies') }}

    ),
{%- endif %}
{%- if cdp_model_enabled('stg_segment__users') %}

    users as (

        select * from {{ ref('stg_segment__users') }}

    ),
{%- endif %}
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

    {#- One branch per (enabled source, attribute). -#}
    {%- set branches = [] %}
    {%- if cdp_model_enabled('stg_segment__identifies') %}
    {%- for attribute, column in [
        ('email', 'email'), ('phone', 'phone'), ('first_name', 'first_name'), ('last_name', 'last_name'),
        ('city', 'address_city'), ('country', 'address_country')] %}
            {%- set branch %}
    select
        'stg_segment__identifies' as source_model,
        coalesce(by_user.customer_id, by_email.customer_id, by_device.customer_id) as customer_id,
        '{{ attribute }}' as attribute,
        cast(identifies.{{ column }} as {{ dbt.type_string() }}) as attribute_value,
        identifies.occurred_at as observed_at
    from identifies
    left join graph as by_user
        on
            by_user.identifier_type = 'user_id'
            and identifies.user_id = by_user.identifier_value
    left join graph as by_email
        on
            by_email.identifier_type = 'email'
            and identifies.email = by_email.identifier_value
    left join graph as by_device
        on
            by_device.identifier_type = 'anonymous_id'
            and identifies.anonymous_id = by_device.identifier_value
    where identifies.{{ column }} is not null
            {%- endset %}
            {%- do branches.append(branch) %}
        {%- endfor %}
    {%- endif %}
    {%- if cdp_model_enabled('stg_segment__users') %}
        {%- for attribute in ['email', 'phone', 'first_name', 'last_name'] %}
            {%- set branch %}
    select
        'stg_segment__users' as source_model,
        by_user.customer_id,
        '{{ attribute }}' as attribute,
        cast(users.{{ attribute }} as {{ dbt.type_string() }}) as attribute_value,
        users.received_at as observed_at
    from users
    inner join graph as by_user
        on
            by_user.identifier_type = 'user_id'
            and users.user_id = by_user.identifier_value
    where users.{{ attribute }} is not null
            {%- endset %}
            {%- do branches.append(branch) %}
        {%- endfor %}
    {%- endif %}
    {%- if cdp_model_enabled('stg_crm__contacts') %}
        {%- for attribute in [
            'email', 'phone', 'first_name', 'last_name', 'company', 'city', 'country', 'lifecycle_stage'] %}
            {%- set branch %}
    select
        'stg_crm__contacts' as source_model,
        by_contact.customer_id,
        '{{ attribute }}' as attribute,
        cast(contacts.{{ attribute }} as {{ dbt.type_string() }}) as attribute_value,
        contacts.updated_at as observed_at
    from contacts
    inner join graph as by_contact
        on
            by_contact.identifier_type = 'crm_id'
            and contacts.contact_id = by_contact.identifier_value
    where contacts.{{ attribute }} is not null and not coalesce(contacts.is_deleted, false)
            {%- endset %}
            {%- do branches.append(branch) %}
        {%- endfor %}
    {%- endif %}
    {%- if cdp_model_enabled('stg_shop__orders') %}
        {%- for attribute, column in [
            ('email', 'email'), ('phone', 'phone'), ('city', 'shipping_city'), ('country', 'shipping_country')] %}
            {%- set branch %}
    select
        'stg_shop__orders' as source_model,
        coalesce(by_user.customer_id, by_email.customer_id) as customer_id,
        '{{ attribute }}' as attribute,
        cast(orders.{{ column }} as {{ dbt.type_string() }}) as attribute_value,
        orders.created_at as observed_at
    from orders
    left join graph as by_user
        on
            by_user.identifier_type = 'user_id'
            and orders.customer_id = by_user.identifier_value
    left join graph as by_email
        on
            by_email.identifier_type = 'email'
            and orders.email = by_email.identifier_value
    where orders.{{ column }} is not null
            {%- endset %}
            {%- do branches.append(branch) %}
        {%- endfor %}
    {%- endif %}
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
