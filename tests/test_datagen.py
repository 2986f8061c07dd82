"""The raw-data generator: layout, determinism, messiness, and a ground truth that is exactly right.

The ground-truth check re-derives every identifier from the raw tables with the normalisation rules of
docs/raw_data.md (written again here, independently of the generator) and compares it with
ground_truth.identifiers, so a generator bug that mislabels one identifier fails the suite.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from reverse_etl.cli import CdpContext
from reverse_etl.datagen import TABLES, GenerateError, generate
from reverse_etl.datagen.cli import generate_command

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS = 1500


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "raw.duckdb"
    summary = generate(path, CUSTOMERS, seed=7)
    assert summary.rows["ground_truth.persons"] == CUSTOMERS
    return path


@pytest.fixture(scope="module")
def con(db: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(db), read_only=True)
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def scalar(con: duckdb.DuckDBPyConnection, sql: str):  # noqa: ANN201
    return con.execute(sql).fetchone()[0]


# ---- layout -----------------------------------------------------------------------------------------


def documented_tables() -> dict[str, list[str]]:
    """Table -> column names, read from the markdown tables of docs/raw_data.md."""
    text = (ROOT / "docs" / "raw_data.md").read_text()
    common_par = text.split("Every event table carries the common columns:")[1].split("\n\n")[0]
    common = re.findall(r"`([a-z_0-9]+)`", common_par)
    tables: dict[str, list[str]] = {}
    schema = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = re.match(r"## `(\w+)`", line)
            schema = heading.group(1) if heading else None
            continue
        if schema is None or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        table = cells[0].strip("`")
        columns_cell = cells[-1]
        while re.search(r"\([^()]*\)", columns_cell):  # drop "(enum values, notes)"
            columns_cell = re.sub(r"\([^()]*\)", "", columns_cell)
        columns = re.findall(r"`([a-z_0-9]+)`", columns_cell)
        if schema == "segment" and table != "users":
            columns = common + columns
        tables[f"{schema}.{table}"] = columns
    return tables


def test_every_documented_table_and_column_exists(con: duckdb.DuckDBPyConnection) -> None:
    documented = documented_tables()
    assert set(documented) == set(TABLES), "docs/raw_data.md and datagen.schema list different tables"
    for name, columns in documented.items():
        schema, table = name.split(".")
        found = [
            r[0]
            for r in rows(
                con,
                "select column_name from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position",
            )
        ]
        assert found == columns, name
        assert scalar(con, f"select count(*) from {name}") > 0, f"{name} is empty"


# ---- determinism ------------------------------------------------------------------------------------


def table_fingerprints(path: Path) -> dict[str, tuple]:
    """Per table: row count and the sum of row hashes (a multiset fingerprint: row order is free)."""
    with duckdb.connect(str(path), read_only=True) as c:
        return {
            name: c.execute(f"select count(*), sum(hash(t)::hugeint) from {name} as t").fetchone()
            for name in TABLES
        }


def test_same_seed_same_data_whatever_the_chunk_size(db: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.duckdb"
    generate(again, CUSTOMERS, seed=7, chunk_size=1)  # rounded to one block of 1,000 persons per chunk
    assert table_fingerprints(again) == table_fingerprints(db)


def test_another_seed_gives_other_data(db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    generate(other, CUSTOMERS, seed=8)
    a, b = table_fingerprints(db), table_fingerprints(other)
    assert all(a[name] != b[name] for name in TABLES)


def test_start_date_moves_all_timestamps(tmp_path: Path) -> None:
    from datetime import date

    path = tmp_path / "dated.duckdb"
    generate(path, 200, start=date(2025, 3, 1), days=30)
    with duckdb.connect(str(path), read_only=True) as c:
        lo, hi = c.execute('select min("timestamp"), max("timestamp") from segment.pages').fetchone()
    assert str(lo) >= "2025-03-01" and str(hi) < "2025-04-01"


# ---- messiness --------------------------------------------------------------------------------------


def test_duplicate_deliveries(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("segment.pages", "segment.tracks", "segment.identifies"):
        total, distinct = rows(con, f"select count(*), count(distinct id) from {table}")[0]
        assert 0.002 < (total - distinct) / total < 0.01, table


def test_junk_values_in_identifier_columns(con: duckdb.DuckDBPyConnection) -> None:
    junk = "('test@test.com', 'null', 'undefined', '0000', '-1', '')"
    for table, column in [
        ("segment.identifies", "email"),
        ("segment.identifies", "phone"),
        ("segment.pages", "user_id"),
        ("shop.orders", "email"),
        ("crm.contacts", "phone"),
    ]:
        assert scalar(con, f"select count(*) from {table} where {column} in {junk}") > 0, (table, column)


def test_messy_emails_and_phone_formats(con: duckdb.DuckDBPyConnection) -> None:
    emails = [r[0] for r in rows(con, "select email from segment.identifies where email like '%@%'")]
    assert any(e != e.strip() for e in emails)
    assert any(e.strip() != e.strip().lower() for e in emails)
    phones = [
        r[0] for r in rows(con, "select phone from crm.contacts union all select phone from shop.orders")
    ]
    phones = [p for p in phones if p and len(re.sub(r"\D", "", p)) >= 8]
    shapes = {re.sub(r"\d", "9", p) for p in phones}
    assert any(p.startswith("+") for p in phones) and any(p.startswith("00") for p in phones)
    assert any(p.startswith("(") for p in phones) and any("." in p for p in phones)
    assert len(shapes) >= 15


def test_late_events_and_null_identifiers(con: duckdb.DuckDBPyConnection) -> None:
    late = scalar(con, 'select count(*) from segment.pages where received_at > "timestamp" + interval 1 day')
    assert late > 0
    assert scalar(con, "select count(*) from segment.order_completed where anonymous_id is null") > 0
    assert scalar(con, "select count(*) from segment.pages where user_id is null") > 0
    assert scalar(con, "select count(*) from segment.pages where context_campaign_source is not null") > 0


def test_kiosks_are_shared_by_many_persons(con: duckdb.DuckDBPyConnection) -> None:
    shared = rows(
        con,
        "select identifier_value, count(distinct person_id) from ground_truth.identifiers "
        "where is_shared group by 1",
    )
    assert shared and all(n >= 10 for _, n in shared)
    # The kiosk ids really appear in the raw data, identified as several users.
    kiosk = shared[0][0]
    users = scalar(
        con, f"select count(distinct user_id) from segment.identifies where anonymous_id = '{kiosk}'"
    )
    assert users >= 2


def test_orders_are_realistic(con: duckdb.DuckDBPyConnection) -> None:
    statuses = {r[0] for r in rows(con, "select distinct status from shop.orders")}
    assert {"completed", "refunded", "partially_refunded", "cancelled"} <= statuses
    assert scalar(con, "select count(distinct currency) from shop.orders") >= 3
    assert scalar(con, "select count(*) from shop.orders where customer_id is null") > 0
    # Persons who checked out as a guest and also with their account.
    both = scalar(
        con,
        """
        select count(*) from (
            select r.person_id
            from shop.orders as o join ground_truth.records as r
              on r.source_table = 'shop.orders' and r.record_key = o.order_id
            group by 1
            having count(o.customer_id) > 0 and count(*) > count(o.customer_id)
        )
        """,
    )
    assert both > 0
    # Order totals add up, and every order_completed event is a real order with the same total.
    assert scalar(con, "select count(*) from shop.orders where total <> subtotal + tax + shipping") == 0
    assert (
        scalar(
            con,
            "select count(*) from shop.orders as o join (select order_id, sum(line_total) as s "
            "from shop.order_lines group by 1) as l using (order_id) where l.s <> o.subtotal",
        )
        == 0
    )
    mismatched = scalar(
        con,
        "select count(*) from segment.order_completed as e left join shop.orders as o using (order_id) "
        "where o.order_id is null or o.total <> e.total",
    )
    assert mismatched == 0


def test_email_funnel_ratios(con: duckdb.DuckDBPyConnection) -> None:
    counts = dict(rows(con, "select event_type, count(*) from esp.email_events group by 1"))
    assert counts["delivered"] < counts["sent"]
    assert counts["open"] < counts["delivered"] * 0.5
    assert counts["click"] < counts["open"]
    assert counts["bounce"] > 0 and counts.get("unsubscribe", 0) > 0


def test_consent_covers_every_purpose_and_identifier_type(con: duckdb.DuckDBPyConnection) -> None:
    assert {r[0] for r in rows(con, "select distinct purpose from consent.consent_events")} == {
        "email_marketing",
        "sms_marketing",
        "ads_personalization",
        "ad_user_data",
        "analytics",
    }
    assert {r[0] for r in rows(con, "select distinct identifier_type from consent.consent_events")} == {
        "email",
        "user_id",
        "anonymous_id",
        "phone",
    }
    assert {r[0] for r in rows(con, "select distinct status from consent.consent_events")} == {
        "granted",
        "revoked",
    }


def test_event_volume_has_a_heavy_tail(con: duckdb.DuckDBPyConnection) -> None:
    per_person = [
        r[0]
        for r in rows(
            con,
            "select count(*) from ground_truth.records where source_table in "
            "('segment.pages', 'segment.tracks', 'segment.identifies') group by person_id",
        )
    ]
    mean = sum(per_person) / CUSTOMERS
    assert 12 <= mean <= 30
    per_person.sort()
    assert per_person[len(per_person) // 2] < mean  # median below the mean: a long tail
    assert per_person[-1] > 10 * per_person[len(per_person) // 2]


# ---- ground truth -----------------------------------------------------------------------------------

JUNK = {"null", "undefined", "0000", "-1", "", "test@test.com"}
CALLING = {"US": "1", "GB": "44", "DE": "49", "FR": "33"}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


def norm_email(value: str | None) -> str | None:
    if value is None:
        return None
    x = value.strip().lower()
    return x if x not in JUNK and EMAIL_RE.match(x) else None


def norm_phone(value: str | None, default_country: str = "US") -> str | None:
    """The rule in docs/raw_data.md, written independently of the generator."""
    if value is None or value.strip() in JUNK:
        return None
    x = value.strip()
    digits = re.sub(r"\D", "", x)
    if x.startswith("+"):
        e164 = "+" + digits
    elif digits.startswith("00"):
        e164 = "+" + digits[2:]
    elif default_country == "US":
        if len(digits) == 11 and digits.startswith("1"):
            e164 = "+" + digits
        elif len(digits) == 10:
            e164 = "+1" + digits
        else:
            return None
    else:
        e164 = "+" + CALLING[default_country] + digits.removeprefix("0")
    return e164 if 9 <= len(e164) <= 16 else None


def norm_id(value: str | None) -> str | None:
    if value is None:
        return None
    x = value.strip()
    return None if x in JUNK else x


# (table, key column, identifier type, column)
IDENTIFIER_COLUMNS = [
    *(
        (f"segment.{t}", "id", kind, col)
        for t in ("identifies", "tracks", "pages", "order_completed", "product_added", "checkout_started")
        for kind, col in (("anonymous_id", "anonymous_id"), ("user_id", "user_id"))
    ),
    ("segment.identifies", "id", "email", "email"),
    ("segment.identifies", "id", "phone", "phone"),
    ("segment.order_completed", "id", "email", "email"),
    ("segment.users", "id", "user_id", "id"),
    ("segment.users", "id", "email", "email"),
    ("segment.users", "id", "phone", "phone"),
    ("crm.contacts", "contact_id", "crm_contact_id", "contact_id"),
    ("crm.contacts", "contact_id", "email", "email"),
    ("crm.contacts", "contact_id", "phone", "phone"),
    ("crm.contacts", "contact_id", "user_id", "user_id"),
    ("shop.orders", "order_id", "user_id", "customer_id"),
    ("shop.orders", "order_id", "email", "email"),
    ("shop.orders", "order_id", "phone", "phone"),
    ("esp.email_events", "event_id", "email", "email"),
]
NORMALISE = {"email": norm_email, "phone": norm_phone}


def raw_identifiers(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str, str]]:
    """(type, normalised value, person) for every identifier in every raw record."""
    found: set[tuple[str, str, str]] = set()
    for table, key, kind, column in IDENTIFIER_COLUMNS:
        for value, person in rows(
            con,
            f"select distinct t.{column}, r.person_id from {table} as t join ground_truth.records as r "
            f"on r.source_table = '{table}' and r.record_key = t.{key}",
        ):
            normalised = NORMALISE.get(kind, norm_id)(value)
            if normalised is not None:
                found.add((kind, normalised, person))
    for kind, value, person in rows(
        con,
        "select c.identifier_type, c.identifier, r.person_id from consent.consent_events as c "
        "join ground_truth.records as r on r.source_table = 'consent.consent_events' "
        "and r.record_key = c.consent_event_id",
    ):
        normalised = NORMALISE.get(kind, norm_id)(value)
        if normalised is not None:
            found.add((kind, normalised, person))
    return found


def test_ground_truth_identifiers_are_exactly_what_the_raw_data_holds(con: duckdb.DuckDBPyConnection) -> None:
    truth = set(
        rows(con, "select identifier_type, identifier_value, person_id from ground_truth.identifiers")
    )
    assert scalar(con, "select count(*) from ground_truth.identifiers") == len(truth), "duplicate rows"
    raw = raw_identifiers(con)
    missing = raw - truth
    extra = truth - raw
    assert not missing, f"raw identifiers the ground truth lacks, e.g. {sorted(missing)[:5]}"
    assert not extra, f"ground-truth identifiers that appear in no raw record, e.g. {sorted(extra)[:5]}"


def test_only_kiosks_are_shared(con: duckdb.DuckDBPyConnection) -> None:
    by_value: dict[tuple[str, str], set[str]] = defaultdict(set)
    shared_flag: dict[tuple[str, str], bool] = {}
    for kind, value, person, shared in rows(con, "select * from ground_truth.identifiers"):
        by_value[(kind, value)].add(person)
        shared_flag[(kind, value)] = shared
    for key, persons in by_value.items():
        assert (len(persons) > 1) == shared_flag[key] or (shared_flag[key] and key[0] == "anonymous_id"), key
    assert all(kind == "anonymous_id" for (kind, _), s in shared_flag.items() if s)


def test_records_and_persons_are_consistent(con: duckdb.DuckDBPyConnection) -> None:
    orphan = "select count(*) from ground_truth.{t} as x left join ground_truth.persons as p using (person_id) where p.person_id is null"  # noqa: E501
    assert scalar(con, orphan.format(t="records")) == 0
    assert scalar(con, orphan.format(t="identifiers")) == 0
    assert scalar(con, "select count(*) - count(distinct person_id) from ground_truth.persons") == 0
    # One records row per raw record, and every raw record has one.
    assert (
        scalar(con, "select count(*) - count(distinct (source_table, record_key)) from ground_truth.records")
        == 0
    )
    for table, key in [
        ("segment.pages", "id"),
        ("segment.product_added", "id"),
        ("segment.users", "id"),
        ("crm.contacts", "contact_id"),
        ("shop.orders", "order_id"),
        ("shop.order_lines", "order_line_id"),
        ("esp.email_events", "event_id"),
        ("consent.consent_events", "consent_event_id"),
    ]:
        distinct = scalar(con, f"select count(distinct {key}) from {table}")
        assert (
            scalar(con, f"select count(*) from ground_truth.records where source_table = '{table}'")
            == distinct
        )
    # Canonical values of a person are among their identifiers whenever the raw data shows them.
    wrong = scalar(
        con,
        "select count(*) from ground_truth.persons as p join ground_truth.identifiers as i "
        "on i.person_id = p.person_id and i.identifier_type = 'user_id' where i.identifier_value <> p.user_id",
    )
    assert wrong == 0


def test_email_changers_have_two_addresses(con: duckdb.DuckDBPyConnection) -> None:
    two = scalar(
        con,
        "select count(*) from (select person_id from ground_truth.identifiers where identifier_type = 'email' "
        "group by 1 having count(*) = 2)",
    )
    assert two > 0


def test_default_country_changes_only_national_formats(tmp_path: Path) -> None:
    path = tmp_path / "gb.duckdb"
    generate(path, 600, seed=3, default_country="GB")
    with duckdb.connect(str(path), read_only=True) as c:
        truth = {
            (v, p)
            for v, p in c.execute(
                "select identifier_value, person_id from ground_truth.identifiers where identifier_type = 'phone'"
            ).fetchall()
        }
        raw = c.execute(
            "select o.phone, r.person_id from crm.contacts as o join ground_truth.records as r "
            "on r.source_table = 'crm.contacts' and r.record_key = o.contact_id where o.phone is not null"
        ).fetchall()
    national = [v for v, _ in raw if v.startswith("0") and not v.startswith("00")]
    assert national, "no national-format numbers for the default country"
    for value, person in raw:
        e164 = norm_phone(value, "GB")
        if e164 is not None:
            assert (e164, person) in truth, value


# ---- append, errors, CLI ----------------------------------------------------------------------------


def test_append_continues_the_numbering(tmp_path: Path) -> None:
    path = tmp_path / "append.duckdb"
    generate(path, 300, seed=1)
    summary = generate(path, 300, seed=2, append=True)
    assert summary.first_person == 300
    with duckdb.connect(str(path), read_only=True) as c:
        assert c.execute("select count(distinct person_id) from ground_truth.persons").fetchone()[0] == 600
        assert c.execute("select count(*) - count(distinct order_id) from shop.orders").fetchone()[0] == 0
        non_shared = c.execute(
            "select count(*) from (select identifier_type, identifier_value from ground_truth.identifiers "
            "where not is_shared group by 1, 2 having count(*) > 1)"
        ).fetchone()[0]
        assert non_shared == 0


def test_append_needs_existing_tables(tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match="without --append"):
        generate(tmp_path / "empty.duckdb", 10, append=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, "customers"),
        ({"customers": 10, "days": 0}, "days"),
        ({"customers": 10, "seed": -1}, "seed"),
        ({"customers": 10, "default_country": "XX"}, "default_country"),
    ],
)
def test_bad_arguments_are_named(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(GenerateError, match=message):
        generate(tmp_path / "x.duckdb", **kwargs)


def test_cli_writes_into_the_context_database(tmp_path: Path) -> None:
    path = tmp_path / "cli.duckdb"
    result = CliRunner().invoke(
        generate_command,
        ["--customers", "250", "--seed", "5", "--no-progress"],
        obj=CdpContext(None, str(path)),
    )
    assert result.exit_code == 0, result.output
    assert "generated 250 persons" in result.output
    assert "segment.pages" in result.output
    with duckdb.connect(str(path), read_only=True) as c:
        assert c.execute("select count(*) from ground_truth.persons").fetchone()[0] == 250


# ---- memory -----------------------------------------------------------------------------------------

_PEAK = """
import sys, tracemalloc
import pyarrow as pa
from reverse_etl.datagen import generate
tracemalloc.start()
generate(sys.argv[1], int(sys.argv[2]), chunk_size=1000)
print(tracemalloc.get_traced_memory()[1] + pa.default_memory_pool().max_memory())
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_size(tmp_path: Path) -> None:
    """The generator's own peak memory (numpy arrays, traced by tracemalloc, plus Arrow buffers) at 3x
    the persons stays within 1.25x: it is bounded by the chunk, not the total. DuckDB's share is capped
    by its memory_limit; benchmarks/bench_generate.py reports the whole-process peak RSS."""
    peaks = []
    for n in (30_000, 90_000):
        out = subprocess.run(
            [sys.executable, "-c", _PEAK, str(tmp_path / f"m{n}.duckdb"), str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        peaks.append(int(out.stdout.split()[-1]))
    assert peaks[1] < 1.25 * peaks[0], peaks
