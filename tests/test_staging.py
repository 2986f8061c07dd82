"""The staging layer end to end: hand-made raw tables in a temporary DuckDB, `dbt build --select
staging` (models, data tests and unit tests), and the normalised rows checked one by one.

Three warehouses are built: the Segment layout of docs/raw_data.md with messy values, a RudderStack
layout (traits only as `context_traits_*`, zoned and text timestamps), and an UPPER-CASE export as
Snowflake writes it. dbt runs once per warehouse (module-scoped fixtures)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reverse_etl.dbt import DbtResult, run_dbt

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "models" / "staging" / "README.md"

Rows = list[dict[str, Any]]

EVENT_COLUMNS = {
    "id": "varchar",
    "anonymous_id": "varchar",
    "user_id": "varchar",
    "received_at": "timestamp",
    "sent_at": "timestamp",
    "timestamp": "timestamp",
    "original_timestamp": "timestamp",
    "uuid_ts": "timestamp",
    "context_ip": "varchar",
    "context_user_agent": "varchar",
    "context_page_url": "varchar",
    "context_page_path": "varchar",
    "context_page_referrer": "varchar",
    "context_page_title": "varchar",
    "context_campaign_source": "varchar",
    "context_campaign_medium": "varchar",
    "context_campaign_name": "varchar",
    "context_library_name": "varchar",
    "context_library_version": "varchar",
}

# The raw contract of docs/raw_data.md: table -> {column: type}.
RAW_TABLES: dict[str, dict[str, str]] = {
    "segment.identifies": {
        **EVENT_COLUMNS,
        "email": "varchar",
        "first_name": "varchar",
        "last_name": "varchar",
        "phone": "varchar",
        "address_city": "varchar",
        "address_country": "varchar",
        "address_postal_code": "varchar",
    },
    "segment.users": {
        "id": "varchar",
        "received_at": "timestamp",
        "uuid_ts": "timestamp",
        "email": "varchar",
        "first_name": "varchar",
        "last_name": "varchar",
        "phone": "varchar",
        "created_at": "timestamp",
    },
    "segment.tracks": {**EVENT_COLUMNS, "event": "varchar", "event_text": "varchar"},
    "segment.pages": {
        **EVENT_COLUMNS,
        "name": "varchar",
        "path": "varchar",
        "url": "varchar",
        "referrer": "varchar",
        "title": "varchar",
        "search": "varchar",
    },
    "segment.order_completed": {
        **EVENT_COLUMNS,
        "event": "varchar",
        "event_text": "varchar",
        "order_id": "varchar",
        "total": "decimal(12, 2)",
        "revenue": "decimal(12, 2)",
        "currency": "varchar",
        "email": "varchar",
    },
    "segment.product_added": {
        **EVENT_COLUMNS,
        "event": "varchar",
        "event_text": "varchar",
        "cart_id": "varchar",
        "product_id": "varchar",
        "sku": "varchar",
        "name": "varchar",
        "price": "decimal(12, 2)",
        "quantity": "integer",
    },
    "segment.checkout_started": {
        **EVENT_COLUMNS,
        "event": "varchar",
        "event_text": "varchar",
        "cart_id": "varchar",
        "order_id": "varchar",
        "value": "decimal(12, 2)",
        "currency": "varchar",
    },
    "crm.contacts": {
        "contact_id": "varchar",
        "email": "varchar",
        "phone": "varchar",
        "first_name": "varchar",
        "last_name": "varchar",
        "company": "varchar",
        "job_title": "varchar",
        "lifecycle_stage": "varchar",
        "address_line1": "varchar",
        "city": "varchar",
        "postal_code": "varchar",
        "country": "varchar",
        "user_id": "varchar",
        "created_at": "timestamp",
        "updated_at": "timestamp",
        "is_deleted": "boolean",
    },
    "shop.orders": {
        "order_id": "varchar",
        "customer_id": "varchar",
        "email": "varchar",
        "phone": "varchar",
        "status": "varchar",
        "currency": "varchar",
        "subtotal": "decimal(12, 2)",
        "tax": "decimal(12, 2)",
        "shipping": "decimal(12, 2)",
        "total": "decimal(12, 2)",
        "refunded_amount": "decimal(12, 2)",
        "shipping_address_line1": "varchar",
        "shipping_city": "varchar",
        "shipping_postal_code": "varchar",
        "shipping_country": "varchar",
        "created_at": "timestamp",
        "updated_at": "timestamp",
    },
    "shop.order_lines": {
        "order_line_id": "varchar",
        "order_id": "varchar",
        "product_id": "varchar",
        "sku": "varchar",
        "product_name": "varchar",
        "category": "varchar",
        "quantity": "integer",
        "unit_price": "decimal(12, 2)",
        "line_total": "decimal(12, 2)",
    },
    "esp.email_events": {
        "event_id": "varchar",
        "email": "varchar",
        "event_type": "varchar",
        "campaign_id": "varchar",
        "campaign_name": "varchar",
        "url": "varchar",
        "occurred_at": "timestamp",
    },
    "consent.consent_events": {
        "consent_event_id": "varchar",
        "identifier_type": "varchar",
        "identifier": "varchar",
        "purpose": "varchar",
        "status": "varchar",
        "occurred_at": "timestamp",
        "source": "varchar",
    },
}

T0 = "2024-03-01 10:00:00"

# Hand-made rows with the mess real pipelines deliver. Columns left out are null.
RAW_ROWS: dict[str, Rows] = {
    "segment.identifies": [
        # Delivered twice: the copy received first wins.
        {
            "id": "id-1",
            "anonymous_id": "anon-1",
            "user_id": "u1",
            "received_at": "2024-03-01 10:00:05",
            "timestamp": T0,
            "uuid_ts": "2024-03-01 10:05:00",
            "email": "  Jane.Doe@Example.COM ",
            "phone": "020 7946 0958",
            "address_country": "gb",
            "first_name": "Jane",
            "context_campaign_source": "Google",
            "context_ip": "203.0.113.9",
        },
        {
            "id": "id-1",
            "anonymous_id": "anon-1",
            "user_id": "u1",
            "received_at": "2024-03-01 10:00:09",
            "timestamp": T0,
            "email": "second-copy@example.com",
        },
        {
            "id": "id-2",
            "anonymous_id": "undefined",
            "user_id": "null",
            "received_at": T0,
            "timestamp": T0,
            "email": "test@test.com",
            "phone": "(415) 555-0123",
        },
        {
            "id": "id-3",
            "anonymous_id": " anon-3 ",
            "user_id": "-1",
            "received_at": T0,
            "email": "not-an-email",
        },
        # No message id: cannot be keyed, dropped.
        {"id": "", "anonymous_id": "anon-9", "received_at": T0},
    ],
    "segment.users": [
        {"id": "u1", "received_at": "2024-03-01 09:00:00", "email": "old@example.com"},
        {
            "id": "u1",
            "received_at": "2024-03-02 09:00:00",
            "email": " JANE.DOE@example.com",
            "phone": "+1 (415) 555-0123",
            "first_name": "Jane",
            "created_at": "2023-12-24 08:00:00",
        },
        {"id": "none", "received_at": T0, "email": "ghost@example.com"},
    ],
    "segment.tracks": [
        {
            "id": "t-1",
            "anonymous_id": "anon-1",
            "event": "product_viewed",
            "event_text": "Product Viewed",
            "received_at": T0,
        },
        {"id": "t-2", "anonymous_id": "anon-1", "event_text": "  Signed Up! ", "received_at": T0},
        {
            "id": "t-2",
            "anonymous_id": "anon-1",
            "event_text": "  Signed Up! ",
            "received_at": "2024-03-01 10:00:01",
        },
    ],
    "segment.pages": [
        {
            "id": "p-1",
            "anonymous_id": "anon-1",
            "received_at": T0,
            "name": "Home",
            "url": "https://shop.example.com/?utm_source=x",
            "path": "/",
            "context_page_url": "https://shop.example.com/ignored",
            "search": "?utm_source=x",
            "context_campaign_medium": "CPC",
        }
    ],
    "segment.order_completed": [
        {
            "id": "oc-1",
            "anonymous_id": "anon-1",
            "user_id": "u1",
            "received_at": T0,
            "event": "order_completed",
            "event_text": "Order Completed",
            "order_id": "O-1",
            "total": "110.00",
            "revenue": "100.00",
            "currency": "usd",
            "email": "JANE.DOE@EXAMPLE.COM",
        }
    ],
    "segment.product_added": [
        {
            "id": "pa-1",
            "anonymous_id": "anon-1",
            "received_at": T0,
            "event": "product_added",
            "cart_id": "cart-1",
            "product_id": "P-1",
            "sku": "SKU-1",
            "name": "Hat",
            "price": "45.50",
            "quantity": 2,
        }
    ],
    "segment.checkout_started": [
        {
            "id": "cs-1",
            "anonymous_id": "anon-1",
            "received_at": T0,
            "cart_id": "cart-1",
            "value": "91.00",
            "currency": "eur",
        }
    ],
    "crm.contacts": [
        {
            "contact_id": "C000001",
            "email": " JANE.DOE@EXAMPLE.COM",
            "phone": "0044 20 7946 0958",
            "first_name": "Jane",
            "company": "Acme",
            "lifecycle_stage": "Marketing Qualified Lead",
            "country": "GB",
            "user_id": "u1",
            "updated_at": "2024-01-01 00:00:00",
            "is_deleted": False,
        },
        {
            "contact_id": "C000002",
            "email": "n/a",
            "phone": "0000",
            "lifecycle_stage": "customer",
            "country": "US",
            "updated_at": "2024-01-01 00:00:00",
        },
        # Two versions of a contact: the latest wins.
        {
            "contact_id": "C000003",
            "phone": "415.555.0123",
            "lifecycle_stage": "lead",
            "updated_at": "2024-01-01 00:00:00",
        },
        {
            "contact_id": "C000003",
            "phone": "030 1234567",
            "country": "de",
            "lifecycle_stage": "opportunity",
            "updated_at": "2024-02-01 00:00:00",
            "is_deleted": True,
        },
    ],
    "shop.orders": [
        {
            "order_id": "O-1",
            "customer_id": "u1",
            "email": "Jane.Doe@Example.com ",
            "phone": "415-555-0123",
            "status": "completed",
            "currency": "usd",
            "subtotal": "100.00",
            "tax": "5.00",
            "shipping": "5.00",
            "total": "110.00",
            "shipping_country": "US",
            "created_at": T0,
        },
        {
            "order_id": "O-2",
            "customer_id": "",
            "status": "Partially_Refunded",
            "total": "50.00",
            "refunded_amount": "20.00",
        },
        {"order_id": "O-3", "status": "cancelled", "total": "30.00", "refunded_amount": "0.00"},
    ],
    "shop.order_lines": [
        {
            "order_line_id": "L-1",
            "order_id": "O-1",
            "product_id": "P-1",
            "category": "Apparel",
            "quantity": 2,
            "unit_price": "45.50",
            "line_total": "91.00",
        },
        {"order_line_id": "L-2", "order_id": "O-1", "product_id": "P-2", "quantity": 3, "unit_price": "3.00"},
    ],
    "esp.email_events": [
        {"event_id": "E-1", "email": "Jane.Doe@Example.com", "event_type": "delivered", "occurred_at": T0},
        {"event_id": "E-1", "email": "Jane.Doe@Example.com", "event_type": "delivered", "occurred_at": T0},
        {
            "event_id": "E-2",
            "email": "jane.doe@example.com",
            "event_type": "Clicked",
            "url": "https://x",
            "occurred_at": T0,
        },
        {"event_id": "E-3", "email": "undefined", "event_type": "spam", "occurred_at": T0},
    ],
    "consent.consent_events": [
        {
            "consent_event_id": "K-1",
            "identifier_type": "email",
            "identifier": " JANE.DOE@example.com",
            "purpose": "email_marketing",
            "status": "granted",
            "occurred_at": T0,
            "source": "checkout",
        },
        {
            "consent_event_id": "K-2",
            "identifier_type": "phone",
            "identifier": "(415) 555-0123",
            "purpose": "sms_marketing",
            "status": "revoked",
            "occurred_at": T0,
            "source": "preference_center",
        },
        {
            "consent_event_id": "K-3",
            "identifier_type": "anonymous_id",
            "identifier": "anon-1",
            "purpose": "analytics",
            "status": "opt_out",
            "occurred_at": T0,
            "source": "cookie_banner",
        },
    ],
}


def create_tables(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, dict[str, str]],
    rows: dict[str, Rows],
    *,
    upper: bool = False,
) -> None:
    """Create each raw table and insert its rows (``upper`` names tables and columns in capitals)."""
    for qualified, columns in tables.items():
        schema, table = qualified.split(".")
        if upper:
            schema, table = schema.upper(), table.upper()
        con.execute(f'create schema if not exists "{schema}"')
        names = [c.upper() if upper else c for c in columns]
        ddl = ", ".join(f'"{n}" {t}' for n, t in zip(names, columns.values(), strict=True))
        con.execute(f'create table "{schema}"."{table}" ({ddl})')
        unknown = {k for r in rows.get(qualified, []) for k in r} - set(columns)
        assert not unknown, f"test data for {qualified} names unknown columns {sorted(unknown)}"
        values = [[r.get(c) for c in columns] for r in rows.get(qualified, [])]
        if values:
            quoted = ", ".join(f'"{n}"' for n in names)
            marks = ", ".join("?" for _ in names)
            con.executemany(f'insert into "{schema}"."{table}" ({quoted}) values ({marks})', values)


def build(
    tmp: Path, database: Path, select: str, extra: Sequence[str] = (), command: str = "build"
) -> DbtResult:
    """Run dbt on the project with a private target and log path (other runs share the checkout)."""
    args = [
        command,
        "--select",
        select,
        "--target-path",
        str(tmp / "target"),
        "--log-path",
        str(tmp / "logs"),
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CDP_PROFILES_DIR", raising=False)
        patch.delenv("DBT_PROFILES_DIR", raising=False)
        patch.setenv("CDP_DUCKDB_PATH", str(database))
        return run_dbt([*args, *extra], project=PROJECT, database=database, quiet=True)


def read_staging(database: Path) -> dict[str, Rows]:
    """Every view of the staging schema, as rows ordered by their first column."""
    con = duckdb.connect(str(database))
    try:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'staging'"
            ).fetchall()
        ]
        out: dict[str, Rows] = {}
        for name in names:
            cur = con.execute(f'select * from staging."{name}" order by 1')
            cols = [d[0] for d in cur.description]
            out[name] = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
            if not out[name]:
                out[name] = [dict.fromkeys(cols)]  # keep the column list of an empty view
        return out
    finally:
        con.close()


def by_key(rows: Rows, key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def failure_text(result: DbtResult) -> str:
    return "\n".join(result.failures + ([result.exception] if result.exception else []))


# -- the Segment warehouse of docs/raw_data.md ---------------------------------------------------------


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rows]:
    tmp = tmp_path_factory.mktemp("staging")
    database = tmp / "cdp.duckdb"
    con = duckdb.connect(str(database))
    create_tables(con, RAW_TABLES, RAW_ROWS)
    con.close()
    result = build(tmp, database, "staging")
    assert result.success, f"dbt build --select staging failed:\n{failure_text(result)}"
    return read_staging(database)


def test_every_staging_model_is_built(staged: dict[str, Rows]) -> None:
    assert set(staged) == set(readme_columns())


def test_output_columns_match_the_readme(staged: dict[str, Rows]) -> None:
    for model, columns in readme_columns().items():
        assert list(staged[model][0]) == columns, f"{model}: columns differ from models/staging/README.md"


def test_identifies_dedupes_and_normalises(staged: dict[str, Rows]) -> None:
    rows = by_key(staged["stg_segment__identifies"], "event_id")
    assert set(rows) == {"id-1", "id-2", "id-3"}
    first = rows["id-1"]
    assert first["email"] == "jane.doe@example.com"  # the earliest received copy, not "second-copy@"
    assert first["received_at"] == ts("2024-03-01 10:00:05")
    assert first["loaded_at"] == ts("2024-03-01 10:05:00")
    assert first["phone"] == "+442079460958"  # national GB number read in address_country
    assert first["address_country"] == "GB"
    assert first["utm_source"] == "google"
    assert first["ip"] == "203.0.113.9"
    assert first["occurred_at"] == ts(T0)
    junk = rows["id-2"]
    assert (junk["anonymous_id"], junk["user_id"], junk["email"]) == (None, None, None)
    assert junk["phone"] == "+14155550123"
    third = rows["id-3"]
    assert (third["anonymous_id"], third["user_id"], third["email"]) == ("anon-3", None, None)
    assert third["occurred_at"] == ts(T0)  # no timestamp: falls back to received_at


def test_users_keep_latest_traits(staged: dict[str, Rows]) -> None:
    rows = staged["stg_segment__users"]
    assert [r["user_id"] for r in rows] == ["u1"]
    assert rows[0]["email"] == "jane.doe@example.com"
    assert rows[0]["phone"] == "+14155550123"
    assert rows[0]["created_at"] == ts("2023-12-24 08:00:00")


def test_tracks_event_names(staged: dict[str, Rows]) -> None:
    rows = by_key(staged["stg_segment__tracks"], "event_id")
    assert rows["t-1"]["event_name"] == "product_viewed"
    assert rows["t-2"]["event_name"] == "signed_up"
    assert rows["t-2"]["received_at"] == ts(T0)
    assert len(staged["stg_segment__tracks"]) == 2


def test_pages_prefer_the_page_properties(staged: dict[str, Rows]) -> None:
    (page,) = staged["stg_segment__pages"]
    assert page["page_url"] == "https://shop.example.com/?utm_source=x"
    assert (page["page_path"], page["page_name"], page["page_search"]) == ("/", "Home", "?utm_source=x")
    assert page["utm_medium"] == "cpc"


def test_ecommerce_events(staged: dict[str, Rows]) -> None:
    (order,) = staged["stg_segment__order_completed"]
    assert (order["order_id"], order["total"], order["revenue"]) == ("O-1", Decimal("110"), Decimal("100"))
    assert (order["currency"], order["email"], order["event_name"]) == (
        "USD",
        "jane.doe@example.com",
        "order_completed",
    )
    (added,) = staged["stg_segment__product_added"]
    assert (added["product_name"], added["price"], added["quantity"]) == ("Hat", Decimal("45.5"), 2)
    (checkout,) = staged["stg_segment__checkout_started"]
    assert (checkout["checkout_value"], checkout["currency"]) == (Decimal("91"), "EUR")
    assert checkout["event_name"] == "checkout_started"  # no `event` column value: the table's name


def test_crm_contacts(staged: dict[str, Rows]) -> None:
    rows = by_key(staged["stg_crm__contacts"], "contact_id")
    assert set(rows) == {"C000001", "C000002", "C000003"}
    jane = rows["C000001"]
    assert (jane["email"], jane["phone"]) == ("jane.doe@example.com", "+442079460958")
    assert (jane["lifecycle_stage"], jane["lifecycle_stage_rank"]) == ("marketing_qualified_lead", 3)
    assert (rows["C000002"]["email"], rows["C000002"]["phone"]) == (None, None)
    latest = rows["C000003"]
    assert (latest["phone"], latest["country"], latest["lifecycle_stage"]) == (
        "+49301234567",
        "DE",
        "opportunity",
    )
    assert latest["is_deleted"] is True
    assert jane["is_deleted"] is False and rows["C000002"]["is_deleted"] is False


def test_shop_orders_and_lines(staged: dict[str, Rows]) -> None:
    orders = by_key(staged["stg_shop__orders"], "order_id")
    one, two, three = orders["O-1"], orders["O-2"], orders["O-3"]
    assert (one["email"], one["phone"], one["currency"]) == ("jane.doe@example.com", "+14155550123", "USD")
    assert (one["net_amount"], one["refunded_amount"], one["is_refunded"]) == (
        Decimal("110"),
        Decimal("0"),
        False,
    )
    assert (two["customer_id"], two["status"]) == (None, "partially_refunded")
    assert (two["net_amount"], two["is_refunded"], two["is_fully_refunded"]) == (Decimal("30"), True, False)
    assert (three["net_amount"], three["is_cancelled"], three["is_completed"]) == (Decimal("0"), True, False)
    lines = by_key(staged["stg_shop__order_lines"], "order_line_id")
    assert lines["L-1"]["line_total"] == Decimal("91")
    assert lines["L-2"]["line_total"] == Decimal("9")  # no exported total: quantity * unit_price
    assert lines["L-1"]["category"] == "apparel"


def test_email_events(staged: dict[str, Rows]) -> None:
    rows = by_key(staged["stg_esp__email_events"], "email_event_id")
    assert len(staged["stg_esp__email_events"]) == 3
    assert (rows["E-1"]["email"], rows["E-1"]["event_type"], rows["E-1"]["is_engagement"]) == (
        "jane.doe@example.com",
        "delivered",
        False,
    )
    assert (rows["E-2"]["event_type"], rows["E-2"]["is_engagement"]) == ("click", True)
    assert (rows["E-3"]["email"], rows["E-3"]["event_type"]) == (None, "spam_complaint")


def test_consent_events(staged: dict[str, Rows]) -> None:
    rows = by_key(staged["stg_consent__consent_events"], "consent_event_id")
    assert (rows["K-1"]["identifier"], rows["K-1"]["email"], rows["K-1"]["is_granted"]) == (
        "jane.doe@example.com",
        "jane.doe@example.com",
        True,
    )
    assert (rows["K-2"]["phone"], rows["K-2"]["email"], rows["K-2"]["is_granted"]) == (
        "+14155550123",
        None,
        False,
    )
    assert (rows["K-3"]["anonymous_id"], rows["K-3"]["status"], rows["K-3"]["is_granted"]) == (
        "anon-1",
        "revoked",
        False,
    )


# -- RudderStack and UPPER-CASE warehouses -------------------------------------------------------------

# RudderStack, as a Snowflake export writes it: UPPER-CASE schema, table and column names; traits only
# under context_traits_*; `timestamp` zoned, `original_timestamp` as text; the IP as context_request_ip.
# The users table has another name (identifier var); product_added is switched off (var) and absent;
# checkout_started is absent but left on, so its model must fail with an error that says what to do.
RUDDER_EVENT_COLUMNS = {
    "id": "varchar",
    "anonymous_id": "varchar",
    "user_id": "varchar",
    "received_at": "timestamptz",
    "sent_at": "timestamptz",
    "timestamp": "timestamptz",
    "original_timestamp": "varchar",
    "uuid_ts": "timestamptz",
    "context_request_ip": "varchar",
    "context_traits_email": "varchar",
    "context_traits_phone": "varchar",
    "context_library_name": "varchar",
}
RUDDER_TABLES = {
    "rudder.identifies": {**RUDDER_EVENT_COLUMNS, "context_traits_first_name": "varchar"},
    "rudder.tracks": {**RUDDER_EVENT_COLUMNS, "event": "varchar", "event_text": "varchar"},
    "rudder.users": {"id": "varchar", "received_at": "timestamptz", "context_traits_email": "varchar"},
    "rudder.pages": {**RUDDER_EVENT_COLUMNS, "name": "varchar", "url": "varchar"},
    "rudder.order_completed": {
        **RUDDER_EVENT_COLUMNS,
        "event": "varchar",
        "order_id": "varchar",
        "total": "double",
    },
}
RUDDER_ROWS: dict[str, Rows] = {
    "rudder.identifies": [
        {
            "id": "r-1",
            "anonymous_id": "anon-r",
            "user_id": "u9",
            "received_at": "2024-03-01 12:00:05+02:00",
            "timestamp": "2024-03-01 12:00:00+02:00",
            "original_timestamp": "2024-03-01T11:59:00.000+02:00",
            "context_request_ip": "198.51.100.7",
            "context_traits_email": " Rudder.User@Example.com",
            "context_traits_phone": "(212) 555-0188",
            "context_traits_first_name": "Ru",
            "context_library_name": "RudderLabs JavaScript SDK",
        }
    ],
    "rudder.tracks": [
        {
            "id": "r-2",
            "anonymous_id": "anon-r",
            "event": "signed_up",
            "received_at": "2024-03-01 12:00:00+00:00",
            "context_traits_email": "RUDDER.USER@EXAMPLE.COM",
        },
        {
            "id": "r-2",
            "anonymous_id": "anon-r",
            "event": "signed_up",
            "received_at": "2024-03-01 13:30:00+02:00",
        },
    ],
    "rudder.users": [
        {
            "id": "u9",
            "received_at": "2024-03-01 12:00:00+00:00",
            "context_traits_email": "rudder.user@example.com",
        }
    ],
    "rudder.pages": [
        {
            "id": "r-3",
            "anonymous_id": "anon-r",
            "received_at": "2024-03-01 12:00:00+00:00",
            "url": "https://x/",
        }
    ],
    "rudder.order_completed": [
        {
            "id": "r-4",
            "user_id": "u9",
            "received_at": "2024-03-01 12:00:00+00:00",
            "order_id": "O-9",
            "total": 12.5,
        }
    ],
}


@pytest.fixture(scope="module")
def rudder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("staging_rudder")
    database = tmp / "warehouse.duckdb"
    con = duckdb.connect(str(database))
    con.execute("set TimeZone = 'UTC'")
    create_tables(con, RUDDER_TABLES, RUDDER_ROWS, upper=True)
    con.execute('alter table "RUDDER"."USERS" rename to "RUDDER_USERS"')
    con.close()
    run_vars = {
        "cdp_segment_schema": "RUDDER",
        "cdp_segment_users_identifier": "RUDDER_USERS",
        "cdp_using_segment_product_added": False,
    }
    result = build(tmp, database, "staging.segment", ["--vars", json.dumps(run_vars)], command="run")
    return {"result": result, "staged": read_staging(database)}


def test_rudderstack_upper_case_layout(rudder: dict[str, Any]) -> None:
    staged = rudder["staged"]
    (identify,) = staged["stg_segment__identifies"]
    assert identify["event_id"] == "r-1"
    assert identify["email"] == "rudder.user@example.com"
    assert identify["phone"] == "+12125550188"
    assert identify["first_name"] == "Ru"
    assert identify["ip"] == "198.51.100.7"
    assert identify["library_name"] == "RudderLabs JavaScript SDK"
    assert identify["occurred_at"] == ts("2024-03-01 10:00:00")  # +02:00 converted to UTC
    assert identify["client_occurred_at"] == ts("2024-03-01 09:59:00")  # text with offset, to UTC
    assert identify["received_at"] == ts("2024-03-01 10:00:05")
    assert identify["page_url"] is None  # no such column: a typed null
    (track,) = staged["stg_segment__tracks"]
    # The second delivery is earlier in UTC (11:30) than the first (12:00): it wins.
    assert (track["event_name"], track["received_at"], track["email"]) == (
        "signed_up",
        ts("2024-03-01 11:30:00"),
        None,
    )
    assert staged["stg_segment__users"][0]["email"] == "rudder.user@example.com"  # via the identifier var
    assert staged["stg_segment__pages"][0]["page_url"] == "https://x/"
    assert staged["stg_segment__order_completed"][0]["total"] == Decimal("12.5")


def test_switched_off_table_is_not_built(rudder: dict[str, Any]) -> None:
    assert "stg_segment__product_added" not in rudder["staged"]
    assert "product_added" not in failure_text(rudder["result"])


def test_missing_source_table_names_the_fix(rudder: dict[str, Any]) -> None:
    result: DbtResult = rudder["result"]
    assert not result.success
    message = failure_text(result)
    assert len(result.failures) == 1, message
    assert "stg_segment__checkout_started" in message
    assert "segment.checkout_started" in message
    assert "cdp_using_segment_checkout_started" in message and "cdp_segment_schema" in message


# -- the README table ----------------------------------------------------------------------------------


def readme_columns() -> dict[str, list[str]]:
    """Model -> output columns, as models/staging/README.md documents them."""
    text = README.read_text()
    shared = re.search(r"in every `stg_segment__\*` model except `users`:\s*(.+?)\.\n\n", text, re.S)
    assert shared, "README: shared event column list not found"
    event_columns = [c.strip(" `\n") for c in shared.group(1).replace("\n", " ").split(",")]
    models: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = re.match(r"\| `(stg_\w+)` \| [^|]+ \| (.+) \|$", line)
        if not match:
            continue
        columns: list[str] = []
        for item in match.group(2).split(","):
            item = item.strip()
            columns.extend(event_columns if item == "`<event columns>`" else [item])
        models[match.group(1)] = columns
    assert len(models) == 13, f"README: expected 13 models in the table, found {sorted(models)}"
    return models


# -- agreement with the generator's ground truth ---------------------------------------------------------

# (model, raw table, record key, {staging column: ground-truth identifier type})
IDENTIFIER_COLUMNS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    (
        "stg_segment__identifies",
        "segment.identifies",
        "event_id",
        {"anonymous_id": "anonymous_id", "user_id": "user_id", "email": "email", "phone": "phone"},
    ),
    (
        "stg_segment__users",
        "segment.users",
        "user_id",
        {"user_id": "user_id", "email": "email", "phone": "phone"},
    ),
    (
        "stg_segment__tracks",
        "segment.tracks",
        "event_id",
        {"anonymous_id": "anonymous_id", "user_id": "user_id"},
    ),
    (
        "stg_segment__pages",
        "segment.pages",
        "event_id",
        {"anonymous_id": "anonymous_id", "user_id": "user_id"},
    ),
    (
        "stg_segment__order_completed",
        "segment.order_completed",
        "event_id",
        {"anonymous_id": "anonymous_id", "user_id": "user_id", "email": "email"},
    ),
    (
        "stg_segment__product_added",
        "segment.product_added",
        "event_id",
        {"anonymous_id": "anonymous_id", "user_id": "user_id"},
    ),
    (
        "stg_segment__checkout_started",
        "segment.checkout_started",
        "event_id",
        {"anonymous_id": "anonymous_id", "user_id": "user_id"},
    ),
    (
        "stg_crm__contacts",
        "crm.contacts",
        "contact_id",
        {"contact_id": "crm_contact_id", "user_id": "user_id", "email": "email", "phone": "phone"},
    ),
    (
        "stg_shop__orders",
        "shop.orders",
        "order_id",
        {"customer_id": "user_id", "email": "email", "phone": "phone"},
    ),
    ("stg_shop__order_lines", "shop.order_lines", "order_line_id", {}),
    ("stg_esp__email_events", "esp.email_events", "email_event_id", {"email": "email"}),
    (
        "stg_consent__consent_events",
        "consent.consent_events",
        "consent_event_id",
        {"email": "email", "phone": "phone", "user_id": "user_id", "anonymous_id": "anonymous_id"},
    ),
)


@pytest.mark.slow
@pytest.mark.parametrize("default_country", ["GB"])
def test_generated_data_matches_ground_truth(tmp_path: Path, default_country: str) -> None:
    """On `cdp generate` data, staging keeps one row per raw record and yields exactly the normalised
    identifiers the ground truth lists, each on a record of the right person. The generator's country
    goes in as `cdp_default_country`, the name docs/raw_data.md gives."""
    from reverse_etl.datagen import generate

    database = tmp_path / "cdp.duckdb"
    generate(database, 1500, seed=11, default_country=default_country)
    result = build(
        tmp_path,
        database,
        "staging",
        [
            "--vars",
            json.dumps({"cdp_default_country": default_country}),
            "--exclude-resource-type",
            "unit_test",
        ],
    )
    assert result.success, failure_text(result)
    con = duckdb.connect(str(database))
    try:
        selects = []
        for model, table, key, columns in IDENTIFIER_COLUMNS:
            records = con.execute(
                "select count(*) from ground_truth.records where source_table = ?", [table]
            ).fetchall()
            staged = con.execute(f"select count(*) from staging.{model}").fetchall()
            assert staged == records, (
                f"{model}: {staged[0][0]} rows, ground truth has {records[0][0]} records"
            )
            selects += [
                f"select '{table}' as source_table, {key} as record_key, '{kind}' as identifier_type, "
                f"{column} as identifier_value from staging.{model} where {column} is not null"
                for column, kind in columns.items()
            ]
        con.execute("create temp table staged_identifiers as " + " union all ".join(selects))
        wrong = con.execute(
            """
            select s.source_table, s.identifier_type, s.identifier_value
            from staged_identifiers as s
            left join ground_truth.records as r
                on r.source_table = s.source_table and r.record_key = s.record_key
            left join ground_truth.identifiers as i
                on i.identifier_type = s.identifier_type
                and i.identifier_value = s.identifier_value
                and i.person_id = r.person_id
            where i.person_id is null
            limit 10
            """
        ).fetchall()
        assert not wrong, f"staging identifiers the ground truth does not give that record's person: {wrong}"
        missed = con.execute(
            """
            select i.identifier_type, i.identifier_value
            from ground_truth.identifiers as i
            where not exists (
                select 1 from staged_identifiers as s
                where s.identifier_type = i.identifier_type and s.identifier_value = i.identifier_value
            )
            limit 10
            """
        ).fetchall()
        assert not missed, f"ground-truth identifiers staging does not produce: {missed}"
    finally:
        con.close()
