{#-
    One row per customer with profile observations: the golden record. Each attribute of var
    cdp_survivorship keeps the value its rule picks among the customer's rows of
    int_profile_attributes (macros/profiles/profiles.sql, cdp_survivor); crm_lifecycle_stage is the
    most recent CRM lifecycle stage.

    Incremental, per customer. Each row keeps how many observations it was chosen from and the sum of
    their fingerprints; a build counts and sums every customer's observations again and chooses again
    only for the customers whose observations differ: new or updated source rows, merged or split
    identities, deleted contacts, erased identifiers. A customer left with no observations gets a row
    with no observation_count, which only deletes its stored row (strategy cdp_replace_keys). A digest
    of the survivorship rules and source priority is kept in int_golden_records__state; when it changes
    (or the state is missing) every customer is chosen again. A full refresh gives the same table.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdp_replace_keys',
    unique_key='customer_id',
    cdp_tombstone_column='observation_count',
    on_schema_change=('fail' if target.type == 'spark' else 'sync_all_columns'),
    post_hook=["{{ cdp_golden_records_save_state(this) }}"],
) }}

{%- do cdp_check_survivorship() %}
{%- set survivorship = cdp_survivorship_rules() %}
{%- set frequency_attributes = [] %}
{%- set ranked_attributes = [] %}
{%- for attribute, rule in survivorship.items() %}
    {%- do (frequency_attributes if rule == 'most_frequent' else ranked_attributes).append(attribute) %}
{%- endfor %}

with

observations as (

    select
        customer_id,
        attribute,
        attribute_value,
        source_model,
        observed_at,
        {{ cdp_fingerprint("attribute || ':' || attribute_value", ['source_model', 'observed_at']) }}
            as observation_fingerprint
    from {{ ref('int_profile_attributes') }}
    where attribute in ({{ cdp_sql_strings(survivorship.keys() | list) }})

),

{%- if is_incremental() %}

    current_customers as (  -- noqa: ST03

        select
            customer_id,
            count(*) as observation_count,
            cast(sum(observation_fingerprint) as {{ dbt.type_bigint() }}) as observation_fingerprint
        from observations
        group by customer_id

    ),

    stored as (  -- noqa: ST03
        {#- Summed per customer, so that a key stored twice differs and is chosen again. #}
        select
            customer_id,
            sum(observation_count) as observation_count,
            cast(sum(observation_fingerprint) as {{ dbt.type_bigint() }}) as observation_fingerprint
        from {{ this }}
        group by customer_id

    ),

    changed_customers as (
        {#- current_customers and stored are read inside cdp_changed_keys (hence their noqa). #}
        select changed.customer_id
        from ({{ cdp_changed_keys(
            'current_customers', 'stored', 'customer_id', 'observation_count',
            cdp_golden_records_recompute_all(this), 'observation_fingerprint') }}) as changed

    ),

    to_choose as (

        select observations.*
        from observations
        inner join changed_customers on observations.customer_id = changed_customers.customer_id

    ),
{%- else %}

    to_choose as (

        select * from observations

    ),
{%- endif %}

candidates as (
    {#- The observations survivorship ranks; a most_frequent attribute's are one row per value, with
        how often and when last it was observed. Each row carries how many observations it stands for
        and the sum of their fingerprints. #}
    select
        customer_id,
        attribute,
        attribute_value,
        source_model,
        observed_at,
        0 as value_count,
        1 as observation_count,
        observation_fingerprint
    from to_choose
    where attribute in ({{ cdp_sql_strings(ranked_attributes) }})
    {%- if frequency_attributes %}
        union all
        select
            customer_id,
            attribute,
            attribute_value,
            cast(null as {{ dbt.type_string() }}) as source_model,
            max(observed_at) as observed_at,
            count(*) as value_count,
            count(*) as observation_count,
            sum(observation_fingerprint) as observation_fingerprint
        from to_choose
        where attribute in ({{ cdp_sql_strings(frequency_attributes) }})
        group by customer_id, attribute, attribute_value
    {%- endif %}

),

golden as (
    {#- One pass: each attribute's survivor is an aggregate over the customer's rows. #}
    select
        customer_id,
        {%- for attribute, rule in survivorship.items() %}
            {{ cdp_survivor(attribute, rule) }} as {{ 'crm_lifecycle_stage' if attribute == 'lifecycle_stage' else attribute }},
        {%- endfor %}
        sum(observation_count) as observation_count,
        cast(sum(observation_fingerprint) as {{ dbt.type_bigint() }}) as observation_fingerprint
    from candidates
    group by customer_id

),

final as (
    {%- if is_incremental() %}
        {#- Every changed customer, with nulls (observation_count too) for one with no observations left. #}
        select
            changed_customers.customer_id,
            {%- for attribute in survivorship %}
                golden.{{ 'crm_lifecycle_stage' if attribute == 'lifecycle_stage' else attribute }},
            {%- endfor %}
            golden.observation_count,
            golden.observation_fingerprint
        from changed_customers
        left join golden on changed_customers.customer_id = golden.customer_id
    {%- else %}
        select * from golden
    {%- endif %}

)

select * from final
