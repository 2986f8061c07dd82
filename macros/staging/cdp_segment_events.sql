{#-
    What every Segment / RudderStack event table shares: the message id, the identifiers, the
    timestamps and the page, campaign and library context. Used by the stg_segment__* event models
    so that each of them only adds its own columns.
-#}

{#- The message id, cleaned: duplicate deliveries of one message share it. -#}
{% macro cdp_segment_event_id_column(columns) -%}
    {{- return(cdp_clean_identifier(cdp_column(columns, ['id', 'message_id', 'messageid']))) -}}
{%- endmacro %}

{#- The order of duplicate deliveries of one message: the earliest received wins. -#}
{% macro cdp_segment_first_delivery_order(columns) -%}
    {{ cdp_column(columns, ['received_at'], 'timestamp') }} asc nulls last,
    {{ cdp_column(columns, ['uuid_ts', 'loaded_at'], 'timestamp') }} asc nulls last
{%- endmacro %}

{#- The shared projection (the model adds a comma and its own columns). On the
    pages table the page's own properties (url, path, ...) come before the context copies. -#}
{% macro cdp_segment_event_columns(columns, page_properties=false) -%}
    {%- set page = {} -%}
    {%- for field in ['url', 'path', 'referrer', 'title'] -%}
        {%- do page.update({field: ([field] if page_properties else []) + ['context_page_' ~ field]}) -%}
    {%- endfor -%}
    {{ cdp_segment_event_id_column(columns) }} as event_id,
    {{ cdp_clean_identifier(cdp_column(columns, ['anonymous_id'])) }} as anonymous_id,
    {{ cdp_clean_identifier(cdp_column(columns, ['user_id'])) }} as user_id,
    {{ cdp_normalize_email(cdp_column(columns, ['email', 'context_traits_email'])) }} as email,
    {{ cdp_normalize_phone(
        cdp_column(columns, ['phone', 'context_traits_phone']),
        cdp_column(columns, ['address_country', 'context_traits_address_country'])
    ) }} as phone,
    {{ cdp_column(columns, ['timestamp', 'original_timestamp', 'received_at'], 'timestamp') }} as occurred_at,
    {{ cdp_column(columns, ['original_timestamp'], 'timestamp') }} as client_occurred_at,
    {{ cdp_column(columns, ['sent_at'], 'timestamp') }} as sent_at,
    {{ cdp_column(columns, ['received_at'], 'timestamp') }} as received_at,
    {{ cdp_column(columns, ['uuid_ts', 'loaded_at'], 'timestamp') }} as loaded_at,
    {{ cdp_clean_identifier(cdp_column(columns, ['context_ip', 'context_request_ip'])) }} as ip,
    {{ cdp_column(columns, ['context_user_agent']) }} as user_agent,
    {{ cdp_column(columns, page['url']) }} as page_url,
    {{ cdp_column(columns, page['path']) }} as page_path,
    {{ cdp_column(columns, page['referrer']) }} as referrer,
    {{ cdp_column(columns, page['title']) }} as page_title,
    lower({{ cdp_clean_identifier(cdp_column(columns, ['context_campaign_source'])) }}) as utm_source,
    lower({{ cdp_clean_identifier(cdp_column(columns, ['context_campaign_medium'])) }}) as utm_medium,
    {{ cdp_clean_identifier(cdp_column(columns, ['context_campaign_name'])) }} as utm_campaign,
    {{ cdp_clean_identifier(cdp_column(columns, ['context_campaign_term'])) }} as utm_term,
    {{ cdp_clean_identifier(cdp_column(columns, ['context_campaign_content'])) }} as utm_content,
    {{ cdp_column(columns, ['context_library_name']) }} as library_name,
    {{ cdp_column(columns, ['context_library_version']) }} as library_version
{%- endmacro %}
