{#- A table, not a view: identity stitching, profile attributes and customer_events read it more than
    once per build, so duplicates are removed once per build instead of on every read. -#}
{{ config(materialized='table', enabled=var('cdp_using_segment', true) and var('cdp_using_segment_tracks', true)) }}

{%- set columns = cdp_source_columns('segment', 'tracks') %}

with

source as (

    select * from {{ source('segment', 'tracks') }}

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
        {{ cdp_segment_event_columns(columns) }},
        coalesce(
            {{ cdp_clean_identifier(cdp_column(columns, ['event'])) }},
            {{ cdp_regexp_replace(
                cdp_regexp_replace('lower(' ~ cdp_column(columns, ['event_text']) ~ ')', '[^a-z0-9]+', '_'),
                '^_+|_+$',
                '',
            ) }}
        ) as event_name,
        {{ cdp_column(columns, ['event_text']) }} as event_text
    from first_deliveries

),

final as (

    select * from renamed
    where event_id is not null

)

select * from final
