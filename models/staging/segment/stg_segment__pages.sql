{#- A table, not a view: identity stitching, profile attributes and customer_events read it more than
    once per build, so duplicates are removed once per build instead of on every read. -#}
{{ config(materialized='table', enabled=var('cdp_using_segment', true) and var('cdp_using_segment_pages', true)) }}

{%- set columns = cdp_source_columns('segment', 'pages') %}

with

source as (

    select * from {{ source('segment', 'pages') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by {{ cdp_segment_event_id_column(columns) }}
            order by {{ cdp_segment_first_delivery_order(columns) }}
        ) as delivery_rank
    from source

),

first_deliveries as (

    select * from ranked
    where delivery_rank = 1

),

renamed as (

    select
        {{ cdp_segment_event_columns(columns, page_properties=true) }},
        {{ cdp_column(columns, ['name']) }} as page_name,
        {{ cdp_column(columns, ['search', 'context_page_search']) }} as page_search
    from first_deliveries

),

final as (

    select * from renamed
    where event_id is not null

)

select * from final
