"""The raw tables the generator writes: names, column order and DuckDB types.

This is the executable form of ``docs/raw_data.md``; the tests check that the two agree. Column order
here is the order of the Arrow tables the renderer builds (inserts are positional).
"""

from __future__ import annotations

TS = "timestamp"
TEXT = "varchar"
MONEY = "decimal(18, 2)"

SEGMENT_COMMON: tuple[tuple[str, str], ...] = (
    ("id", TEXT),
    ("anonymous_id", TEXT),
    ("user_id", TEXT),
    ("received_at", TS),
    ("sent_at", TS),
    ("timestamp", TS),
    ("original_timestamp", TS),
    ("uuid_ts", TS),
    ("context_ip", TEXT),
    ("context_user_agent", TEXT),
    ("context_page_url", TEXT),
    ("context_page_path", TEXT),
    ("context_page_referrer", TEXT),
    ("context_page_title", TEXT),
    ("context_campaign_source", TEXT),
    ("context_campaign_medium", TEXT),
    ("context_campaign_name", TEXT),
    ("context_library_name", TEXT),
    ("context_library_version", TEXT),
)

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "segment.identifies": SEGMENT_COMMON
    + (
        ("email", TEXT),
        ("first_name", TEXT),
        ("last_name", TEXT),
        ("phone", TEXT),
        ("address_city", TEXT),
        ("address_country", TEXT),
        ("address_postal_code", TEXT),
    ),
    "segment.users": (
        ("id", TEXT),
        ("received_at", TS),
        ("uuid_ts", TS),
        ("email", TEXT),
        ("first_name", TEXT),
        ("last_name", TEXT),
        ("phone", TEXT),
        ("created_at", TS),
    ),
    "segment.tracks": SEGMENT_COMMON + (("event", TEXT), ("event_text", TEXT)),
    "segment.pages": SEGMENT_COMMON
    + (
        ("name", TEXT),
        ("path", TEXT),
        ("url", TEXT),
        ("referrer", TEXT),
        ("title", TEXT),
        ("search", TEXT),
    ),
    "segment.order_completed": SEGMENT_COMMON
    + (
        ("event", TEXT),
        ("event_text", TEXT),
        ("order_id", TEXT),
        ("total", MONEY),
        ("revenue", MONEY),
        ("currency", TEXT),
        ("email", TEXT),
    ),
    "segment.product_added": SEGMENT_COMMON
    + (
        ("event", TEXT),
        ("event_text", TEXT),
        ("cart_id", TEXT),
        ("product_id", TEXT),
        ("sku", TEXT),
        ("name", TEXT),
        ("price", MONEY),
        ("quantity", "integer"),
    ),
    "segment.checkout_started": SEGMENT_COMMON
    + (
        ("event", TEXT),
        ("event_text", TEXT),
        ("cart_id", TEXT),
        ("order_id", TEXT),
        ("value", MONEY),
        ("currency", TEXT),
    ),
    "crm.contacts": (
        ("contact_id", TEXT),
        ("email", TEXT),
        ("phone", TEXT),
        ("first_name", TEXT),
        ("last_name", TEXT),
        ("company", TEXT),
        ("job_title", TEXT),
        ("lifecycle_stage", TEXT),
        ("address_line1", TEXT),
        ("city", TEXT),
        ("postal_code", TEXT),
        ("country", TEXT),
        ("user_id", TEXT),
        ("created_at", TS),
        ("updated_at", TS),
        ("is_deleted", "boolean"),
    ),
    "shop.orders": (
        ("order_id", TEXT),
        ("customer_id", TEXT),
        ("email", TEXT),
        ("phone", TEXT),
        ("status", TEXT),
        ("currency", TEXT),
        ("subtotal", MONEY),
        ("tax", MONEY),
        ("shipping", MONEY),
        ("total", MONEY),
        ("refunded_amount", MONEY),
        ("shipping_address_line1", TEXT),
        ("shipping_city", TEXT),
        ("shipping_postal_code", TEXT),
        ("shipping_country", TEXT),
        ("created_at", TS),
        ("updated_at", TS),
    ),
    "shop.order_lines": (
        ("order_line_id", TEXT),
        ("order_id", TEXT),
        ("product_id", TEXT),
        ("sku", TEXT),
        ("product_name", TEXT),
        ("category", TEXT),
        ("quantity", "integer"),
        ("unit_price", MONEY),
        ("line_total", MONEY),
    ),
    "esp.email_events": (
        ("event_id", TEXT),
        ("email", TEXT),
        ("event_type", TEXT),
        ("campaign_id", TEXT),
        ("campaign_name", TEXT),
        ("url", TEXT),
        ("occurred_at", TS),
    ),
    "consent.consent_events": (
        ("consent_event_id", TEXT),
        ("identifier_type", TEXT),
        ("identifier", TEXT),
        ("purpose", TEXT),
        ("status", TEXT),
        ("occurred_at", TS),
        ("source", TEXT),
    ),
    "ground_truth.persons": (
        ("person_id", TEXT),
        ("canonical_email", TEXT),
        ("canonical_phone", TEXT),
        ("user_id", TEXT),
        ("crm_contact_id", TEXT),
        ("first_name", TEXT),
        ("last_name", TEXT),
        ("created_at", TS),
    ),
    "ground_truth.identifiers": (
        ("identifier_type", TEXT),
        ("identifier_value", TEXT),
        ("person_id", TEXT),
        ("is_shared", "boolean"),
    ),
    "ground_truth.records": (
        ("source_table", TEXT),
        ("record_key", TEXT),
        ("person_id", TEXT),
    ),
}

SCHEMAS = tuple(dict.fromkeys(name.split(".")[0] for name in TABLES))


def create_table_sql(name: str) -> str:
    cols = ", ".join(f'"{col}" {typ}' for col, typ in TABLES[name])
    schema, table = name.split(".")
    return f'create table "{schema}"."{table}" ({cols})'


def quoted(name: str) -> str:
    schema, table = name.split(".")
    return f'"{schema}"."{table}"'
