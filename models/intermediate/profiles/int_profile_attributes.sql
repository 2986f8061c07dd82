{#-
    One row per (customer, attribute, observed value): every name, email, phone, company and address
    value any source holds for a customer, with the source and when it was observed. Survivorship in
    int_golden_records picks one value per attribute. The sources, and which identifiers attribute
    their rows, are in macros/profiles/profile_attributes.sql. Deleted CRM contacts supply nothing.

    A view: int_golden_records reads the same sources itself, so writing these rows (about ten per
    customer) would cost more than computing them; querying it still shows where a profile value came
    from.
-#}
{{ config(materialized='view') }}

{%- set sources = cdp_profile_sources() %}

with

graph as (

    select * from {{ ref('identity_graph') }}

),
{%- for model, source in sources.items() %}

    {{ source['alias'] }} as (
        {#- Each source is attributed once, with only the columns it supplies, then read once per
            attribute. #}
        {{ cdp_profile_source_rows(model, source) }}

    ),
{%- endfor %}

observed as (

    {{ cdp_profile_observations(sources) }}

),

final as (

    select
        customer_id,
        attribute,
        attribute_value,
        source_model,
        observed_at
    from observed

)

select * from final
