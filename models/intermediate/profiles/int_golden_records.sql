{#-
    One row per customer with profile source rows: the golden record. Each attribute of var
    cdp_survivorship keeps the value its rule picks among the customer's observations (the rows of
    int_profile_attributes, computed here from the same sources: macros/profiles/profile_attributes.sql;
    the rule: cdp_survivor in macros/profiles/profiles.sql); crm_lifecycle_stage is the most recent CRM
    lifecycle stage.

    Incremental, per customer. Each row keeps how many source rows (identifies, users, CRM contacts,
    orders) it was chosen from and the sum of their fingerprints; a build counts and sums every
    customer's source rows again and chooses again only for the customers whose rows differ: new or
    updated source rows, merged or split identities, deleted contacts, erased identifiers. A customer
    left with no source rows gets a row with no source_row_count, which only deletes its stored row
    (strategy cdp_replace_keys). A digest of the survivorship rules and source priority is kept in
    int_golden_records__state; when it changes (or the state is missing) every customer is chosen
    again. A full refresh gives the same table.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdp_replace_keys',
    unique_key='customer_id',
    cdp_tombstone_column='source_row_count',
    on_schema_change=('fail' if target.type == 'spark' else 'sync_all_columns'),
    post_hook=["{{ cdp_golden_records_save_state(this) }}"],
) }}

{%- do cdp_check_survivorship() %}
{%- set sources = cdp_profile_sources() %}
{%- set survivorship = cdp_survivorship_rules() %}
{%- set frequency_attributes = [] %}
{%- set ranked_attributes = [] %}
{%- for attribute, rule in survivorship.items() %}
    {%- do (frequency_attributes if rule == 'most_frequent' else ranked_attributes).append(attribute) %}
{%- endfor %}
{%- set keys = 'changed_customers' if is_incremental() else 'current_customers' %}

with

graph as (

    select * from {{ ref('identity_graph') }}

),
{%- for model, source in sources.items() %}

    {{ source['alias'] }} as (

        {{ cdp_profile_source_rows(model, source, fingerprint=true) }}

    ),
{%- endfor %}

source_rows as (

    {%- for model, source in sources.items() %}
        select
            attributed_customer_id as customer_id,
            row_fingerprint
        from {{ source['alias'] }}
        where attributed_customer_id is not null
        {{- '\n        union all' if not loop.last }}
    {%- endfor %}

),

current_customers as (

    select
        customer_id,
        count(*) as source_row_count,
        cast(sum(row_fingerprint) as {{ dbt.type_bigint() }}) as source_row_fingerprint
    from source_rows
    group by customer_id

),

{%- if is_incremental() %}

    stored as (  -- noqa: ST03
        {#- Summed per customer, so that a key stored twice differs and is chosen again. #}
        select
            customer_id,
            sum(source_row_count) as source_row_count,
            cast(sum(source_row_fingerprint) as {{ dbt.type_bigint() }}) as source_row_fingerprint
        from {{ this }}
        group by customer_id

    ),

    changed_customers as (
        {#- stored is read inside cdp_changed_keys (hence its noqa). #}
        select changed.customer_id
        from ({{ cdp_changed_keys(
            'current_customers', 'stored', 'customer_id', 'source_row_count',
            cdp_golden_records_recompute_all(this), 'source_row_fingerprint') }}) as changed

    ),
    {%- for model, source in sources.items() %}

        {{ source['alias'] }}_changed as (

            select {{ source['alias'] }}.*
            from {{ source['alias'] }}
            inner join changed_customers
                on {{ source['alias'] }}.attributed_customer_id = changed_customers.customer_id

        ),
    {%- endfor %}
{%- endif %}

observations as (

    {{ cdp_profile_observations(sources, '_changed' if is_incremental() else '') }}

),

candidates as (
    {#- The observations survivorship ranks; a most_frequent attribute's are one row per value, with
        how often and when last it was observed. #}
    select
        customer_id,
        attribute,
        attribute_value,
        source_model,
        observed_at,
        0 as value_count
    from observations
    where attribute in ({{ cdp_sql_strings(ranked_attributes) }})
    {%- if frequency_attributes %}
        union all
        select
            customer_id,
            attribute,
            attribute_value,
            cast(null as {{ dbt.type_string() }}) as source_model,
            max(observed_at) as observed_at,
            count(*) as value_count
        from observations
        where attribute in ({{ cdp_sql_strings(frequency_attributes) }})
        group by customer_id, attribute, attribute_value
    {%- endif %}

),

golden as (
    {#- One pass: each attribute's survivor is an aggregate over the customer's rows. #}
    select
        customer_id,
        {%- for attribute, rule in survivorship.items() %}
            {{ cdp_survivor(attribute, rule) }} as {{ 'crm_lifecycle_stage' if attribute == 'lifecycle_stage' else attribute }}{{ ',' if not loop.last }}
        {%- endfor %}
    from candidates
    group by customer_id

),

final as (
    {#- Every customer to write, with its counts; on an incremental build a changed customer with no
        source rows left has none (its stored row only goes). #}
    select
        {{ keys }}.customer_id,
        {%- for attribute in survivorship %}
            golden.{{ 'crm_lifecycle_stage' if attribute == 'lifecycle_stage' else attribute }},
        {%- endfor %}
        current_customers.source_row_count,
        current_customers.source_row_fingerprint
    from {{ keys }}
    {%- if is_incremental() %}
        left join current_customers on {{ keys }}.customer_id = current_customers.customer_id
    {%- endif %}
    left join golden on {{ keys }}.customer_id = golden.customer_id

)

select * from final
