"""Profiles on hand-made data, through the real `dbt build` on DuckDB: survivorship, refunds, sessions,
consent, windows and the declared computed traits.

The fixture `world` (shared with tests/test_segments.py) builds one warehouse twice: a first build,
a copy of it, then changes (a refund, a new order, a suppressed email, a new sign-up) and a second
build, so segment history has something to record.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reverse_etl.dbt import run_dbt
from tests.conftest import PROJECT, dbt_build
from tests.rawdata import BASE_TIME, RawData, at, order_row

# One set of vars for every build here, so dbt's partial parsing is reused between builds.
VARS = (
    "{cdp_as_of: '2026-03-10', cdp_identity_max_cluster_size: 5000,"
    " cdp_yaml_segments: [{name: registered_customers, description: Customers with an account, owner: qa,"
    " where: is_registered}],"
    " cdp_segment_holdouts: {registered_customers: 0.5},"
    " cdp_segment_priority_lists: {journey: [high_value_customers, registered_customers]}}"
)
PROFILES = [
    "--select",
    "+customer_profiles",
    "+segment_membership_history",
    "+segment_priority_members",
    "--exclude",
    "test_type:unit",
    "--indirect-selection",
    "cautious",
    "--vars",
    VARS,
]
HOLDOUT_POPULATION = 200


def minutes(when: datetime) -> float:
    """`when` as minutes after the tests' base time (for RawData's shorthands)."""
    return (when - BASE_TIME).total_seconds() / 60


def query(database: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def traits(database: Path, user_id: str) -> dict[str, Any]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        cur = con.execute("select * from marts.customer_traits where user_id = ?", [user_id])
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        con.close()
    assert len(rows) == 1, f"expected one customer with user_id {user_id}, got {len(rows)}"
    return dict(zip(names, rows[0], strict=True))


def consent(event_id: str, kind: str, value: str, purpose: str, status: str, minute: float) -> dict[str, Any]:
    return {
        "consent_event_id": event_id,
        "identifier_type": kind,
        "identifier": value,
        "purpose": purpose,
        "status": status,
        "occurred_at": at(minute),
        "source": "preference_center",
    }


@dataclass
class World:
    first: Path  # the warehouse as the first build left it
    second: Path  # the same warehouse after the changes and the second build
    manifest_dir: Path  # a target directory holding the manifest of these builds


def write_first_state(raw: RawData) -> None:
    # Survivorship: CRM is trusted most for names, the latest value wins for email and city, the most
    # frequent for country. A deleted CRM contact supplies nothing.
    raw.insert(
        "crm.contacts",
        [
            {
                "contact_id": "C00000001",
                "user_id": "u-sam",
                "email": "sam@crm.org",
                "first_name": "Samuel",
                "last_name": "Crm",
                "company": "Acme",
                "city": "Leeds",
                "country": "GB",
                "created_at": at(-1000),
                "updated_at": at(-1000),
                "is_deleted": False,
            },
            {
                "contact_id": "C00000002",
                "user_id": "u-sam",
                "first_name": "Deleted",
                "created_at": at(0),
                "updated_at": at(0),
                "is_deleted": True,
            },
        ],
    )
    raw.insert(
        "segment.users",
        [
            {"id": "u-sam", "first_name": "Sam", "email": "sam@users.org", "received_at": at(-500)},
        ],
    )
    raw.identify(100, user_id="u-sam", email="sam@new.org", first_name="Sammy")
    raw.insert(
        "shop.orders",
        [
            order_row("S1", "u-sam", "completed", 20, -200, shipping_city="Paris", shipping_country="FR"),
            order_row("S2", "u-sam", "completed", 20, -100, shipping_city="Paris", shipping_country="FR"),
        ],
    )
    # Refunds: net of refunds, cancelled and pending orders never count.
    raw.insert(
        "shop.orders",
        [
            order_row("R1", "u-rita", "completed", 100, 10),
            order_row("R2", "u-rita", "partially_refunded", 80, 20, refunded=30),
            order_row("R3", "u-rita", "refunded", 60, 30, refunded=60),
            order_row("R4", "u-rita", "cancelled", 500, 40),
            order_row("R5", "u-rita", "pending", 70, 50),
            order_row("V1", "u-vic", "completed", 600, 60),
        ],
    )
    # Sessions: two devices of one customer, a session across midnight (23:50 -> 00:10), then a gap.
    raw.identify(0, anonymous_id="max-laptop", user_id="u-max")
    raw.identify(1, anonymous_id="max-phone", user_id="u-max")
    raw.page(710, anonymous_id="max-laptop")  # 23:50
    raw.page(715, anonymous_id="max-laptop")  # 23:55
    raw.page(730, anonymous_id="max-phone")  # 00:10 the next day, on the other device
    raw.track(735, "product_viewed", anonymous_id="max-phone")  # 00:15
    raw.page(775, anonymous_id="max-laptop")  # 00:55: 40 minutes later, a new session
    raw.page(0, anonymous_id="drifter")  # never identified: a customer of one device
    raw.page(29, anonymous_id="drifter")
    raw.page(60, anonymous_id="drifter")
    # Consent per purpose, keyed by different identifiers of one customer: the latest change wins.
    raw.identify(0, anonymous_id="cara-dev", user_id="u-cara", email="cara@mail.org")
    raw.insert(
        "consent.consent_events",
        [
            consent("k1", "email", "Cara@Mail.org", "email_marketing", "granted", 10),
            consent("k2", "user_id", "u-cara", "email_marketing", "revoked", 20),
            consent("k3", "anonymous_id", "cara-dev", "analytics", "revoked", 10),
            consent("k4", "anonymous_id", "cara-dev", "analytics", "granted", 30),
            consent("k5", "user_id", "u-cara", "ads_personalization", "granted", 10),
        ],
    )
    # Windows (as_of is 2026-03-10): page_views_30d counts two of four views; first-touch source.
    for when, source in [
        (datetime(2026, 1, 1), "newsletter"),
        (datetime(2026, 2, 20), "google"),
        (datetime(2026, 3, 5), "google"),
        (datetime(2026, 3, 12), None),
    ]:
        raw.page(minutes(when), user_id="u-wendy", context_campaign_source=source)
    # A population for the holdout split.
    for i in range(HOLDOUT_POPULATION):
        raw.identify(200 + i, user_id=f"u-h{i:03d}", email=f"h{i:03d}@mail.org")


def write_changes(raw: RawData) -> None:
    raw.insert(
        "shop.orders",
        [
            order_row("V1", "u-vic", "refunded", 600, 60, refunded=600, updated=2000),  # vic's order refunded
            order_row("R6", "u-rita", "completed", 400, 2000),  # rita reaches high value
        ],
    )
    raw.identify(2000, user_id="u-nina", email="nina@mail.org")  # a new sign-up
    # A new version of sam's CRM contact: the golden record chooses again for sam only.
    raw.insert(
        "crm.contacts",
        [
            {
                "contact_id": "C00000001",
                "user_id": "u-sam",
                "email": "sam@crm.org",
                "first_name": "Samuel",
                "last_name": "Crm",
                "company": "Acme Ltd",
                "city": "Leeds",
                "country": "GB",
                "created_at": at(-1000),
                "updated_at": at(1500),
                "is_deleted": False,
            }
        ],
    )
    # Suppressed by email, written as people type it: trimmed and lower-cased before matching.
    raw.execute(
        "insert into seeds.suppression_list values ('email', ' SAM@New.org ', 'asked to be forgotten')"
    )


@pytest.fixture(scope="session", name="world")
def world_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, dbt_target: Path
) -> World:
    """The warehouse after a first and a second build (copies of each). Built once per session, though
    two modules declare the fixture (tests/test_segments.py imports it)."""
    built: World | None = getattr(request.session, "cdp_profiles_world", None)
    if built is not None:
        return built
    work = tmp_path_factory.mktemp("profiles")
    db = work / "cdp.duckdb"
    raw = RawData(db)
    write_first_state(raw)
    raw.flush()
    dbt_build(db, dbt_target, *PROFILES)
    first = work / "first.duckdb"
    shutil.copy(db, first)
    write_changes(raw)
    raw.flush()
    # The seed would reload the (empty) suppression list from its CSV: keep the rows written above.
    dbt_build(db, dbt_target, *PROFILES[:5], "suppression_list", *PROFILES[5:])
    manifest_dir = work / "target"
    manifest_dir.mkdir()
    shutil.copy(dbt_target / "manifest.json", manifest_dir / "manifest.json")
    built = World(first=first, second=db, manifest_dir=manifest_dir)
    request.session.cdp_profiles_world = built  # type: ignore[attr-defined]  # seen by both modules
    return built


def test_survivorship_source_priority_most_recent_most_frequent(world: World) -> None:
    sam = traits(world.first, "u-sam")
    assert sam["first_name"] == "Samuel"  # CRM beats users and identifies; the deleted contact is ignored
    assert sam["last_name"] == "Crm"
    assert sam["company"] == "Acme"
    assert sam["email"] == "sam@new.org"  # most recent observation
    assert sam["city"] == "Paris"  # most recent: the orders are newer than the CRM record
    assert sam["country"] == "FR"  # most frequent: two orders against one CRM record


def golden_records(database: Path) -> list[tuple]:
    return query(database, "select * from intermediate.int_golden_records order by customer_id")


def test_golden_records_follow_changed_source_rows_and_equal_a_full_refresh(
    world: World, tmp_path: Path
) -> None:
    assert traits(world.second, "u-sam")["company"] == "Acme Ltd"  # the contact's new version
    full = tmp_path / "full.duckdb"
    shutil.copy(world.second, full)
    dbt_build(full, tmp_path / "target", "--select", "int_golden_records", "--full-refresh", "--vars", VARS)
    assert golden_records(world.second) == golden_records(full)


def test_golden_records_choose_again_only_for_changed_customers(world: World, tmp_path: Path) -> None:
    """A stored row whose source rows are unchanged is kept as it is; one whose count or fingerprint
    differs is chosen again. Survivorship rules that change choose again for everyone."""
    db = tmp_path / "cdp.duckdb"
    shutil.copy(world.first, db)
    con = duckdb.connect(str(db))
    try:
        for user_id, change in (
            ("u-h000", "first_name = 'Kept'"),
            ("u-h001", "first_name = 'Chosen again', source_row_fingerprint = source_row_fingerprint + 1"),
        ):
            con.execute(
                f"update intermediate.int_golden_records set {change} where customer_id = "
                "(select customer_id from marts.customer_traits where user_id = ?)",
                [user_id],
            )
    finally:
        con.close()
    select = ["--select", "int_golden_records", "customer_traits"]
    dbt_build(db, tmp_path / "target", *select, "--vars", VARS)
    assert traits(db, "u-h000")["first_name"] == "Kept"
    assert traits(db, "u-h001")["first_name"] is None  # identifies with no name: nothing survives
    assert traits(db, "u-h001")["email"] == "h001@mail.org"

    rules = VARS[:-1] + (
        ", cdp_survivorship: {email: most_frequent, phone: most_recent, first_name: most_recent,"
        " last_name: source_priority, company: source_priority, city: most_recent, country: most_frequent}}"
    )
    dbt_build(db, tmp_path / "target", *select, "--vars", rules)
    assert traits(db, "u-h000")["first_name"] is None
    assert traits(db, "u-sam")["first_name"] == "Sammy"  # most recent now, not the CRM's
    assert traits(db, "u-sam")["email"] == "u-sam@mail.org"  # on both orders: the most frequent now
    full = tmp_path / "full.duckdb"
    shutil.copy(db, full)
    dbt_build(full, tmp_path / "target", *select, "--full-refresh", "--vars", rules)
    assert golden_records(db) == golden_records(full)


def test_lifetime_value_is_net_of_refunds_without_cancelled_or_pending(world: World) -> None:
    rita = traits(world.first, "u-rita")
    assert rita["orders"] == 3
    assert rita["refunded_orders"] == 2
    assert float(rita["lifetime_value"]) == 150.0  # 100 + (80 - 30) + (60 - 60)
    assert float(rita["average_order_value"]) == 50.0
    assert rita["first_order_at"] == at(10)
    assert rita["last_order_at"] == at(30)
    assert float(traits(world.second, "u-rita")["lifetime_value"]) == 550.0
    assert float(traits(world.second, "u-vic")["lifetime_value"]) == 0.0


def test_sessions_cross_midnight_and_merged_devices(world: World) -> None:
    max_id = traits(world.first, "u-max")["customer_id"]
    sessions = query(
        world.first,
        "select started_at, ended_at, events, page_views from marts.customer_sessions "
        "where customer_id = ? order by started_at",
        [max_id],
    )
    assert sessions == [(at(710), at(735), 4, 3), (at(775), at(775), 1, 1)]
    assert sessions[0][0].date() != sessions[0][1].date()  # one session over midnight
    assert traits(world.first, "u-max")["sessions"] == 2
    drifter = query(
        world.first,
        "select started_at, events from marts.customer_sessions where anonymous_id = 'drifter' "
        "order by started_at",
    )
    assert drifter == [(at(0), 2), (at(60), 1)]


def test_consent_latest_change_per_purpose_wins(world: World) -> None:
    cara = traits(world.first, "u-cara")
    assert cara["consent_email_marketing"] is False  # granted by email, then revoked by user id
    assert cara["consent_analytics"] is True  # revoked, then granted on the device
    assert cara["consent_ads_personalization"] is True
    assert cara["consent_sms_marketing"] is False  # never asked


def test_windows_and_declared_traits(world: World) -> None:
    wendy = traits(world.first, "u-wendy")
    assert wendy["as_of"] == datetime(2026, 3, 10)
    assert wendy["page_views"] == 4
    assert wendy["page_views_30d"] == 2  # 2026-02-20 and 2026-03-05; 2026-03-12 is after as_of
    assert wendy["first_touch_utm_source"] == "newsletter"
    assert float(traits(world.first, "u-rita")["revenue_365d"]) == 150.0
    assert traits(world.first, "u-cara")["revenue_365d"] == 0


def test_profiles_list_segments_without_holdouts(world: World) -> None:
    rows = query(
        world.second,
        "select p.segments, m.is_holdout from marts.customer_profiles p "
        "join marts.segment_members m on m.customer_id = p.customer_id "
        "where p.user_id = 'u-rita' and m.segment_name = 'high_value_customers'",
    )
    assert len(rows) == 1
    segments, held_out = rows[0]
    assert ("high_value_customers" in segments.split(",")) is (not held_out)


def test_profile_unit_tests_pass(world: World, dbt_target: Path) -> None:
    """The dbt unit tests of the computed traits (each aggregation) and of customer_traits (RFM,
    lifecycle stage, churn risk) against their expected rows."""
    result = run_dbt(
        [
            "test",
            "--target-path",
            str(dbt_target),
            "--select",
            "int_computed_traits,test_type:unit",
            "customer_traits,test_type:unit",
            "--vars",
            VARS,
        ],
        project=PROJECT,
        database=world.first,
    )
    assert result.success, result.failures
    run = json.loads((dbt_target / "run_results.json").read_text())
    passed = {r["unique_id"].rsplit(".", 1)[-1] for r in run["results"] if r["status"] == "pass"}
    assert {
        "computed_traits_every_aggregation",
        "computed_traits_core_orders_and_consent",
        "customer_traits_rfm_lifecycle_and_churn_risk",
    } <= passed


@pytest.mark.parametrize(
    ("traits_yaml", "message"),
    [
        (
            "[{name: orders_90d, aggregation: total, event_type: order}]",
            "trait 'orders_90d': aggregation 'total' is not supported; use one of count, sum",
        ),
        (
            "[{name: spend, aggregation: sum, column: revnue}]",
            "trait 'spend': column 'revnue' is not a column of customer_events",
        ),
        (
            "[{name: views, aggregation: count, window: 30}]",
            "trait 'views': unknown key 'window'; allowed keys:",
        ),
    ],
)
def test_bad_trait_declarations_stop_the_parse_with_the_fix(
    traits_yaml: str, message: str, tmp_path: Path
) -> None:
    result = run_dbt(
        [
            "parse",
            "--target-path",
            str(tmp_path / "target"),
            "--vars",
            f"{{cdp_computed_traits: {traits_yaml}}}",
        ],
        project=PROJECT,
        database=tmp_path / "unused.duckdb",
    )
    assert not result.success
    assert message in (result.exception or "")


def cdp(world: World, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """Run `cdp` on the second build's warehouse, with that build's manifest."""
    from click.testing import CliRunner

    from reverse_etl.cli import cli

    monkeypatch.setenv("DBT_TARGET_PATH", str(world.manifest_dir))
    result = CliRunner().invoke(cli, ["--project-dir", str(PROJECT), "--database", str(world.second), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_profile_show_masks_pii_unless_asked(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    out = cdp(world, monkeypatch, "profile", "show", "SAM@new.org ", "--events", "2")
    sam = traits(world.second, "u-sam")["customer_id"]
    assert f"customer {sam}" in out
    assert "s***@new.org" in out and "sam@new.org" not in out and "Samuel" not in out
    assert "S***" in out  # the first name, masked
    assert "lifetime_value" in out and "first_touch_utm_source" in out
    latest = [line.split()[3] for line in out.split("Latest 2 events:")[1].splitlines()[3:] if line.strip()]
    assert latest == ["identify", "order_completed"]  # newest first: the identify, then the later order
    shown = cdp(world, monkeypatch, "profile", "show", "u-rita", "--show-pii")
    assert "u-rita@mail.org" in shown and "high_value_customers" in shown


def test_cli_profile_show_unknown_identifier_says_so(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from reverse_etl.cli import cli

    monkeypatch.setenv("DBT_TARGET_PATH", str(world.manifest_dir))
    result = CliRunner().invoke(
        cli, ["--database", str(world.second), "profile", "show", "nobody@nowhere.org"]
    )
    assert result.exit_code != 0
    assert "no identifier 'nobody@nowhere.org'" in result.output
