"""The incremental customer_events and customer_sessions on hand-made data, over several incremental
builds on DuckDB: re-attribution after a merge, a split and a new identifier, the lookback window for
late rows, sessions that follow the events they are made of, and equality with a full refresh.

Events are days apart and the lookback is 24 hours. The window of a build starts 24 hours before the
latest event of each type stored by the builds before it, so every build here stores a newer event of
each type than the ones a later build must re-attribute: those are right only if re-attribution (not
the lookback reload) put them right.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reverse_etl.dbt import run_dbt
from tests.conftest import PROJECT, dbt_build
from tests.rawdata import RawData, at, order_row

DAY = 24 * 60  # minutes
LOOKBACK_HOURS = 24
# One set of vars for every build here, so dbt's partial parsing is reused between builds. The windowed
# trait makes int_computed_traits follow as_of, which moves with the latest event at every build.
VARS = (
    f"{{cdp_events_lookback_hours: {LOOKBACK_HOURS}, cdp_identity_max_cluster_size: 5000, "
    "cdp_computed_traits: [{name: page_views_2d, aggregation: count, event_type: page, window_days: 2}, "
    "{name: first_source, aggregation: first, column: event_type}]}"
)
INCREMENTAL = ["customer_events", "customer_sessions", "int_computed_traits"]
# Data tests are left out to keep the builds quick; the checks below include event_id uniqueness.
BUILD = [
    "--select",
    "+customer_sessions",
    "+int_computed_traits",
    "--exclude",
    "test_type:unit",
    "test_type:data",
    "--vars",
    VARS,
]
FULL_REFRESH = [
    "--select",
    *INCREMENTAL,
    "--full-refresh",
    "--exclude",
    "test_type:data",
    "--vars",
    VARS,
]

Rows = dict[str, dict[str, Any]]


def table_rows(database: Path, table: str, key: str, schema: str = "marts") -> Rows:
    """A table as {key: row}; fails on a duplicate key."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        cur = con.execute(f"select * from {schema}.{table}")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
    by_key = {row[key]: row for row in rows}
    assert len(by_key) == len(rows), f"{table} holds a {key} twice"
    return by_key


# Columns of customer_events about the builds that wrote its rows: they differ between incremental
# builds and a full refresh by design, so the comparisons leave them out.
BOOKKEEPING = ("previous_visitor_id", "written_in_build")
READERS = {
    "customer_sessions": "models/marts/profiles/customer_sessions.sql",
    "int_computed_traits": "models/intermediate/profiles/int_computed_traits.sql",
}


def events(database: Path) -> Rows:
    """customer_events as {event_id: row}, without the build bookkeeping."""
    rows = table_rows(database, "customer_events", "event_id")
    return {key: {k: v for k, v in row.items() if k not in BOOKKEEPING} for key, row in rows.items()}


def written(database: Path) -> dict[str, tuple[int, str | None]]:
    """customer_events' build bookkeeping as {event_id: (written_in_build, previous_visitor_id)}."""
    rows = table_rows(database, "customer_events", "event_id")
    return {key: (row["written_in_build"], row["previous_visitor_id"]) for key, row in rows.items()}


def events_sql(target: Path) -> str:
    """The SQL the last build ran for customer_events."""
    return (target / "compiled" / "cdp" / "models" / "marts" / "profiles" / "customer_events.sql").read_text()


def unmatched_keys(database: Path) -> set[int]:
    """customer_events__unmatched: the identifier keys that could claim stored events."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        return {
            key
            for (key,) in con.execute(
                "select identifier_key from marts.customer_events__unmatched"
            ).fetchall()
        }
    finally:
        con.close()


def reader_sql(target: Path) -> dict[str, str]:
    """The SQL the last build ran for customer_sessions and int_computed_traits."""
    return {name: (target / "compiled" / "cdp" / path).read_text() for name, path in READERS.items()}


def sessions(database: Path) -> Rows:
    """customer_sessions as {session_id: row}."""
    return table_rows(database, "customer_sessions", "session_id")


def computed_traits(database: Path) -> Rows:
    """int_computed_traits as {customer_id: row}."""
    return table_rows(database, "int_computed_traits", "customer_id", schema="intermediate")


def visitor_sessions(rows: Rows) -> dict[str, list[tuple]]:
    """{visitor_id: [(started_at, events, page_views), ...]} in time order."""
    out: dict[str, list[tuple]] = {}
    for row in sorted(rows.values(), key=lambda r: r["started_at"]):
        out.setdefault(row["visitor_id"], []).append((row["started_at"], row["events"], row["page_views"]))
    return out


def customer_of(database: Path, identifier_type: str, value: str) -> str:
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute(
            "select customer_id from marts.identity_graph where identifier_type = ? and identifier_value = ?",
            [identifier_type, value],
        ).fetchall()
    finally:
        con.close()
    assert len(rows) == 1, f"{identifier_type} {value} is not in identity_graph"
    return rows[0][0]


def page(raw: RawData, day: float, anonymous_id: str, received_day: float | None = None) -> str:
    """A page view on `day`, received (and loaded) on `received_day` (default: the same moment)."""
    received = at((received_day if received_day is not None else day) * DAY)
    return "page:" + raw.page(day * DAY, anonymous_id=anonymous_id, received_at=received)


@dataclass
class Timeline:
    database: Path
    after: list[Rows]  # customer_events after each incremental build of the story
    sessions_after: list[Rows]  # customer_sessions after each of them
    ids: dict[str, str]  # event ids of the story, by role
    customers: dict[str, str]  # customer ids seen along the way, by role
    full_refresh: Rows  # a full refresh on a copy of the warehouse after the story
    rerun: Rows  # the same warehouse after one more incremental build with no new data
    rerun_written: tuple[dict, dict]  # customer_events' bookkeeping before and after that build
    snapshot_rows: tuple[int, int]  # rows of customer_events__graph and identity_graph after the rerun
    late: Rows  # after late rows arrived, one within the lookback and one outside it
    late_full_refresh: Rows  # a full refresh on a copy after that
    sessions_checkpoints: dict[str, tuple[Rows, Rows]]  # (incremental, full refresh) customer_sessions
    traits_checkpoints: dict[str, tuple[Rows, Rows]]  # (incremental, full refresh) int_computed_traits
    written_after_merge: dict[str, tuple[int, str | None]]  # customer_events' bookkeeping after build 2
    reader_sql: dict[str, str]  # the SQL build 3 ran for customer_sessions and int_computed_traits
    unmatched_after: list[set[int]]  # customer_events__unmatched after builds 1 and 2
    events_sql: list[str]  # the SQL builds 2 and 3 ran for customer_events


@pytest.fixture(scope="module")
def timeline(tmp_path_factory: pytest.TempPathFactory, dbt_target: Path) -> Timeline:
    """Three incremental builds of a small story, then a rerun, late rows and full refreshes."""
    root = tmp_path_factory.mktemp("customer_events")
    db = root / "cdp.duckdb"
    raw = RawData(db)
    ids: dict[str, str] = {}
    customers: dict[str, str] = {}
    after: list[Rows] = []
    sessions_after: list[Rows] = []

    # Build 1 (day 0-1): Ann has an account; an unlinked device of hers browses; Bob's email consent
    # is the only place his email appears, so no customer owns it yet.
    ids["ann_identify"] = "identify:" + raw.identify(0, user_id="u-ann", email="ann@mail.org")
    ids["ann_page_1"] = page(raw, 1, "dev-ann")
    ids["ann_page_2"] = page(raw, 1.1, "dev-ann")
    ids["other_page_1"] = page(raw, 1.2, "dev-other")
    ids["other_page_3"] = page(raw, 3, "dev-other")  # the page window of build 2 starts on day 2
    raw.insert("shop.orders", [order_row("o-1", "u-ann", "completed", 100, 1 * DAY)])
    raw.insert(
        "esp.email_events",
        [
            {
                "event_id": "em-1",
                "email": "ann@mail.org",
                "event_type": "delivered",
                "occurred_at": at(1 * DAY),
            }
        ],
    )
    raw.insert(
        "consent.consent_events",
        [
            {
                "consent_event_id": "cs-bob",
                "identifier_type": "email",
                "identifier": "Bob@Mail.org",
                "purpose": "email_marketing",
                "status": "granted",
                "occurred_at": at(1 * DAY),
                "source": "preference_center",
            },
            {  # the consent window of build 2 starts on day 2
                "consent_event_id": "cs-other-3",
                "identifier_type": "anonymous_id",
                "identifier": "dev-other",
                "purpose": "analytics",
                "status": "granted",
                "occurred_at": at(3 * DAY),
                "source": "cookie_banner",
            },
        ],
    )
    raw.flush()
    dbt_build(db, dbt_target, *BUILD)
    after.append(events(db))
    sessions_after.append(sessions(db))
    customers["ann"] = customer_of(db, "user_id", "u-ann")
    customers["dev_ann"] = customer_of(db, "anonymous_id", "dev-ann")
    unmatched_after = [unmatched_keys(db)]

    # Build 2 (day 4): Ann logs in on the device (a merge); Bob signs up with his email (an identifier
    # new to the graph); Ann's order is refunded (a new version of an old event, loaded again by its
    # updated_at). The day-1 pages and consent are outside the window: only re-attribution moves them.
    ids["ann_link"] = "identify:" + raw.identify(4 * DAY, anonymous_id="dev-ann", user_id="u-ann")
    ids["bob_identify"] = "identify:" + raw.identify(4 * DAY, user_id="u-bob", email="bob@mail.org")
    ids["other_page_4"] = page(raw, 4, "dev-other")
    raw.insert(
        "esp.email_events",
        [
            {
                "event_id": "em-2",
                "email": "zoe@mail.org",
                "event_type": "delivered",
                "occurred_at": at(4 * DAY),
            }
        ],
    )
    raw.insert(
        "consent.consent_events",
        [
            {
                "consent_event_id": "cs-other",
                "identifier_type": "anonymous_id",
                "identifier": "dev-other",
                "purpose": "analytics",
                "status": "granted",
                "occurred_at": at(4 * DAY),
                "source": "cookie_banner",
            }
        ],
    )
    raw.execute(
        "update shop.orders set status = 'refunded', refunded_amount = 100, updated_at = ? where order_id = 'o-1'",
        [at(4 * DAY)],
    )
    dbt_build(db, dbt_target, *BUILD)
    after.append(events(db))
    sessions_after.append(sessions(db))
    customers["bob"] = customer_of(db, "user_id", "u-bob")
    written_after_merge = written(db)
    unmatched_after.append(unmatched_keys(db))
    built_sql = [events_sql(dbt_target)]

    # Build 3 (day 8): more browsing on the linked device, a new device and an email; no identifier
    # changes customer, and the new device's id is on no stored event.
    # (Newer rows of build 2 moved the windows past day 3, so build 3 reloads none of build 1's rows.)
    ids["ann_page_8"] = page(raw, 8, "dev-ann")
    ids["new_page_8"] = page(raw, 8.1, "dev-new")
    raw.insert(
        "esp.email_events",
        [{"event_id": "em-3", "email": "ann@mail.org", "event_type": "open", "occurred_at": at(8 * DAY)}],
    )
    raw.flush()
    dbt_build(db, dbt_target, *BUILD)
    after.append(events(db))
    sessions_after.append(sessions(db))
    build_3_sql = reader_sql(dbt_target)
    built_sql.append(events_sql(dbt_target))

    # A full refresh on a copy, then one more incremental build with no new data on the original.
    copy = root / "full_refresh.duckdb"
    shutil.copy(db, copy)
    dbt_build(copy, dbt_target, *FULL_REFRESH)
    full_refresh = events(copy)
    checkpoints = {"story": (sessions_after[-1], sessions(copy))}
    traits = {"story": (computed_traits(db), computed_traits(copy))}
    written_before_rerun = written(db)
    dbt_build(db, dbt_target, *BUILD)
    rerun = events(db)
    rerun_written = (written_before_rerun, written(db))
    checkpoints["rerun"] = (sessions(db), sessions(copy))
    traits["rerun"] = (computed_traits(db), computed_traits(copy))
    con = duckdb.connect(str(db), read_only=True)
    try:
        snapshot_rows = (
            con.execute("select count(*) from marts.customer_events__graph").fetchone()[0],
            con.execute("select count(*) from marts.identity_graph").fetchone()[0],
        )
    finally:
        con.close()

    # Late rows: the latest stored page landed on day 8, so the window starts on day 7. One page lands
    # on day 7.5 (inside), one on day 6 (outside: only a full refresh picks it up).
    ids["late_inside"] = page(raw, 7, "dev-ann", received_day=7.5)
    ids["late_outside"] = page(raw, 5, "dev-ann", received_day=6)
    raw.flush()
    dbt_build(db, dbt_target, *BUILD)
    late = events(db)
    late_copy = root / "late_full_refresh.duckdb"
    shutil.copy(db, late_copy)
    dbt_build(late_copy, dbt_target, *FULL_REFRESH)
    # customer_sessions and int_computed_traits rebuilt in full from the same (incremental) customer_events.
    sessions_copy = root / "sessions_full_refresh.duckdb"
    shutil.copy(db, sessions_copy)
    dbt_build(sessions_copy, dbt_target, "--select", *INCREMENTAL[1:], *FULL_REFRESH[-5:])
    checkpoints["late"] = (sessions(db), sessions(sessions_copy))
    traits["late"] = (computed_traits(db), computed_traits(sessions_copy))
    return Timeline(
        db,
        after,
        sessions_after,
        ids,
        customers,
        full_refresh,
        rerun,
        rerun_written,
        snapshot_rows,
        late,
        events(late_copy),
        checkpoints,
        traits,
        written_after_merge,
        build_3_sql,
        unmatched_after,
        built_sql,
    )


def test_first_build_attributes_each_event_by_its_strongest_identifier(timeline: Timeline) -> None:
    first, ids, customers = timeline.after[0], timeline.ids, timeline.customers
    assert customers["ann"] != customers["dev_ann"]
    assert first[ids["ann_identify"]]["customer_id"] == customers["ann"]
    assert first[ids["ann_identify"]]["attributed_by_type"] == "user_id"
    for key in ("ann_page_1", "ann_page_2"):
        assert first[ids[key]]["customer_id"] == customers["dev_ann"]
        assert first[ids[key]]["attributed_by_type"] == "anonymous_id"
    assert first["order:o-1"]["attributed_by_type"] == "user_id"
    assert first["email:em-1"]["customer_id"] == customers["ann"]
    assert first["email:em-1"]["attributed_by_type"] == "email"
    # Bob's email is only on his consent: no customer yet.
    assert first["consent:cs-bob"]["customer_id"] is None
    assert first["consent:cs-bob"]["attributed_by_type"] is None


def test_a_later_identify_moves_old_anonymous_page_views_to_the_customer(timeline: Timeline) -> None:
    second, ids, customers = timeline.after[1], timeline.ids, timeline.customers
    for key in ("ann_page_1", "ann_page_2"):
        row = second[ids[key]]
        assert row["customer_id"] == customers["ann"], row
        assert row["attributed_by_type"] == "anonymous_id"
        # Outside the lookback: the row was re-attributed, not reloaded (its loaded_at is day 1).
        assert row["loaded_at"] == at(DAY * (1 if key == "ann_page_1" else 1.1))
    assert second[ids["ann_link"]]["customer_id"] == customers["ann"]
    assert second[ids["other_page_1"]] == timeline.after[0][ids["other_page_1"]]


def test_an_identifier_new_to_the_graph_claims_its_stored_events(timeline: Timeline) -> None:
    second = timeline.after[1]
    assert second["consent:cs-bob"]["customer_id"] == timeline.customers["bob"]
    assert second["consent:cs-bob"]["attributed_by_type"] == "email"


def test_only_identifiers_stored_events_carry_unmatched_are_probed(timeline: Timeline) -> None:
    """Bob's email is on his consent alone in build 1, so it is kept; build 2 probes the stored events
    for it (and finds the consent, above). Build 3's new device is on no stored event: no probe."""
    db = timeline.database
    con = duckdb.connect(str(db), read_only=True)
    try:
        (bob_email,) = con.execute(
            "select identifier_key from marts.identity_graph where identifier_type = 'email' and identifier_value = ?",
            ["bob@mail.org"],
        ).fetchone()
        (new_device,) = con.execute(
            "select identifier_key from marts.identity_graph where identifier_type = 'anonymous_id' "
            "and identifier_value = 'dev-new'"
        ).fetchone()
    finally:
        con.close()
    first, second = timeline.unmatched_after
    assert first == {bob_email}  # every other event of build 1 is attributed by its strongest identifier
    assert bob_email in second and new_device not in unmatched_keys(db)
    build_2, build_3 = timeline.events_sql
    assert "stored.email in" in build_2
    assert "stored.anonymous_id in" not in build_3 and "stored.email in" not in build_3


def test_a_new_version_of_an_old_order_replaces_it(timeline: Timeline) -> None:
    first, second = timeline.after[0]["order:o-1"], timeline.after[1]["order:o-1"]
    assert (first["event_name"], first["revenue"]) == ("order_completed", 100)
    assert (second["event_name"], second["revenue"]) == ("order_refunded", 0)
    assert second["loaded_at"] == at(4 * DAY)


def test_incremental_builds_equal_a_full_refresh(timeline: Timeline) -> None:
    incremental, full = timeline.after[2], timeline.full_refresh
    assert set(incremental) == set(full)
    different = {key: (incremental[key], full[key]) for key in full if incremental[key] != full[key]}
    assert not different, different
    assert len(full) == 17


def test_a_rerun_without_new_data_changes_nothing(timeline: Timeline) -> None:
    assert timeline.rerun == timeline.after[2]
    before, after = timeline.rerun_written
    assert after == before  # the lookback read build 3's events again and wrote none of them
    snapshot, graph = timeline.snapshot_rows
    assert snapshot == graph > 0


def test_late_rows_inside_the_lookback_load_and_older_ones_wait_for_a_full_refresh(
    timeline: Timeline,
) -> None:
    late, full, ids = timeline.late, timeline.late_full_refresh, timeline.ids
    assert ids["late_inside"] in late
    assert late[ids["late_inside"]]["customer_id"] == timeline.customers["ann"]
    assert ids["late_outside"] not in late
    assert ids["late_outside"] in full
    assert set(full) - set(late) == {ids["late_outside"]}


def test_sessions_follow_their_events_through_a_merge(timeline: Timeline) -> None:
    first, second, third = (visitor_sessions(rows) for rows in timeline.sessions_after)
    customers = timeline.customers
    # Build 1: the device is its own customer; its two page views are 2.4 hours apart (two sessions).
    assert [s[1:] for s in first[customers["dev_ann"]]] == [(1, 1), (1, 1)]
    assert customers["ann"] not in first  # Ann has no page or track event yet
    # Build 2: the merge moves them to Ann, and the device's customer id leaves the table.
    assert customers["dev_ann"] not in second
    assert [s[1:] for s in second[customers["ann"]]] == [(1, 1), (1, 1)]
    # Build 3: a new page view adds a session; the old ones stay as they were.
    assert [s[1:] for s in third[customers["ann"]]] == [(1, 1), (1, 1), (1, 1)]
    other = timeline.after[2][timeline.ids["other_page_1"]]["customer_id"]  # the device's own customer
    assert len(third[other]) == 3 and third[other][:2] == second[other][:2]


def test_each_build_numbers_its_rows_and_keeps_whose_they_were(timeline: Timeline) -> None:
    """Build 2 merged Ann's device into Ann: the re-attributed page views carry build 2 and the device's
    customer id; rows build 2 added carry no previous visitor; rows it did not touch keep build 1, those
    its lookback read again unchanged included."""
    rows, ids, customers = timeline.written_after_merge, timeline.ids, timeline.customers
    for key in ("ann_page_1", "ann_page_2"):
        assert rows[ids[key]] == (2, customers["dev_ann"])
    assert rows[ids["other_page_1"]] == (1, None)  # outside the lookback, its device unchanged
    assert rows[ids["other_page_3"]] == (1, None)  # inside it, with the fingerprint of its stored copy
    added = set(timeline.after[1]) - set(timeline.after[0])
    assert added and all(rows[key] == (2, None) for key in added)


def test_readers_take_the_changed_keys_from_the_latest_build(timeline: Timeline) -> None:
    """Build 3 followed build 2's rows of customer_events: no GROUP BY over every event."""
    for name, sql in timeline.reader_sql.items():
        assert "written_in_build > 2" in sql, name
        assert "full outer join" not in sql, name  # the per-key comparison of cdp_changed_keys


def test_readers_compare_every_key_after_a_skipped_build(timeline: Timeline, tmp_path: Path) -> None:
    """customer_events built twice without its readers: its latest rows no longer name every change, so
    the readers compare every visitor's and customer's events, and still equal a full refresh."""
    database, target = tmp_path / "skipped.duckdb", tmp_path / "target"
    shutil.copy(timeline.database, database)
    raw = RawData(database)
    events_only = [
        "--select",
        "+customer_events",
        "--exclude",
        "test_type:data",
        "test_type:unit",
        "--vars",
        VARS,
    ]
    page(raw, 9, "dev-other")
    raw.flush()
    dbt_build(database, target, *events_only)
    page(raw, 10, "dev-ann")
    raw.flush()
    dbt_build(database, target, *events_only)
    readers = ["--select", *READERS, "--exclude", "test_type:data", "--vars", VARS]
    dbt_build(database, target, *readers)
    for name, sql in reader_sql(target).items():
        assert "full outer join" in sql and "written_in_build" not in sql, name
    full = tmp_path / "full.duckdb"
    shutil.copy(database, full)
    dbt_build(full, tmp_path / "full_target", *readers, "--full-refresh")
    assert sessions(database) == sessions(full)
    assert computed_traits(database) == computed_traits(full)
    ann = computed_traits(database)[timeline.customers["ann"]]
    assert (
        ann["event_count"] == computed_traits(timeline.database)[timeline.customers["ann"]]["event_count"] + 1
    )


def test_incremental_sessions_equal_a_full_refresh(timeline: Timeline) -> None:
    for checkpoint, (incremental, full) in timeline.sessions_checkpoints.items():
        assert incremental == full, checkpoint
    late, _ = timeline.sessions_checkpoints["late"]
    ann = visitor_sessions(late)[timeline.customers["ann"]]
    assert len(ann) == 4  # the late page view inside the lookback made a session of its own


def test_incremental_computed_traits_equal_a_full_refresh(timeline: Timeline) -> None:
    for checkpoint, (incremental, full) in timeline.traits_checkpoints.items():
        assert incremental == full, checkpoint
    late, _ = timeline.traits_checkpoints["late"]
    customers = timeline.customers
    assert customers["dev_ann"] not in late  # merged into Ann: its row went with its events
    ann = late[customers["ann"]]
    # as_of is the latest event (Ann's day-8 page view); the 2-day window holds it and the late page of
    # day 7, not her pages of day 1.
    assert (ann["page_views"], ann["page_views_2d"], ann["first_source"]) == (4, 2, "identify")
    # The other device had no new event in build 3, but as_of moved from day 4 to day 8: its pages of
    # days 3 and 4 left the window, so only following as_of puts its row right.
    story, _ = timeline.traits_checkpoints["story"]
    other = story[timeline.after[2][timeline.ids["other_page_1"]]["customer_id"]]
    assert (other["page_views"], other["page_views_2d"]) == (3, 0)
    assert ann["event_count"] == sum(
        1 for row in timeline.late.values() if row["customer_id"] == customers["ann"]
    )


def incremental_and_full_refresh(
    timeline: Timeline, tmp_path: Path, model: str, new_vars: str
) -> tuple[Path, Path]:
    """Two copies of the story's warehouse after one build of `model` with `new_vars`: incremental, and
    with --full-refresh."""
    incremental, full = tmp_path / "incremental.duckdb", tmp_path / "full.duckdb"
    select = ["--select", model, "--exclude", "test_type:data", "--vars", new_vars]
    for database, extra in ((incremental, []), (full, ["--full-refresh"])):
        shutil.copy(timeline.database, database)
        dbt_build(database, tmp_path / "target", *select, *extra)
    return incremental, full


def test_changed_trait_definitions_recompute_every_customer(timeline: Timeline, tmp_path: Path) -> None:
    """A trait whose window changed and a trait added: the next incremental build (no --full-refresh)
    adds the column and recomputes every customer, as a full refresh would."""
    changed_vars = VARS.replace("window_days: 2}", "window_days: 30}").replace(
        "]}", ", {name: revenue_total, aggregation: sum, column: revenue}]}"
    )
    assert changed_vars.count("revenue_total") == 1 and "window_days: 30" in changed_vars
    incremental, full = incremental_and_full_refresh(timeline, tmp_path, "int_computed_traits", changed_vars)
    rows = computed_traits(incremental)
    assert rows == computed_traits(full)
    ann = rows[timeline.customers["ann"]]
    assert (ann["page_views_2d"], ann["revenue_total"]) == (4, 0)  # now 30 days; the order was refunded


def test_a_new_session_timeout_sessionises_every_visitor_again(timeline: Timeline, tmp_path: Path) -> None:
    """A day-long timeout: the next incremental build (no --full-refresh) recuts every visitor's
    sessions, as a full refresh would."""
    day_long = VARS.replace(
        "cdp_events_lookback_hours", "cdp_session_timeout_minutes: 1440, cdp_events_lookback_hours"
    )
    incremental, full = incremental_and_full_refresh(timeline, tmp_path, "customer_sessions", day_long)
    rows = sessions(incremental)
    assert rows == sessions(full)
    # Ann's two page views of day 1 (2.4 hours apart) are one session now.
    ann = visitor_sessions(rows)[timeline.customers["ann"]]
    assert [s[1:] for s in ann][0] == (2, 2)


def test_an_erasure_nulls_the_forgotten_identifiers_on_stored_events(
    timeline: Timeline, tmp_path: Path
) -> None:
    """Ann asks to be forgotten (her user id, emails and device, as `cdp privacy forget` records them):
    the next incremental build keeps her events for counts but no row keeps those values, as a full
    refresh gives; sessions and computed traits follow."""
    forgotten = [
        ("user_id", "u-ann"),
        ("email", "ann@mail.org"),
        ("email", "u-ann@mail.org"),  # on her order
        ("anonymous_id", "dev-ann"),
    ]
    incremental, full = tmp_path / "incremental.duckdb", tmp_path / "full.duckdb"
    shutil.copy(timeline.database, incremental)
    con = duckdb.connect(str(incremental))
    try:
        for identifier_type, value in forgotten:
            con.execute(
                "insert into cdp_privacy.forgotten_identifiers values "
                "('r-1', ?, md5(? || ':' || ?), md5(?), current_timestamp)",
                [identifier_type, identifier_type, value, value],
            )
    finally:
        con.close()
    shutil.copy(incremental, full)
    before = written(incremental)
    dbt_build(incremental, tmp_path / "target", *BUILD)
    dbt_build(full, tmp_path / "full_target", *BUILD, "--full-refresh")

    rows = events(incremental)
    refreshed = events(full)
    # The full refresh also loads the page that landed after the lookback (Ann's device: nulled too).
    assert refreshed.pop(timeline.ids["late_outside"])["anonymous_id"] is None
    assert rows == refreshed
    assert set(rows) == set(timeline.late)  # every event is still counted
    values = {value for _, value in forgotten}
    held = {row[column] for row in rows.values() for column in ("user_id", "email", "phone", "anonymous_id")}
    assert not values & held
    ann_events = [
        key for key, row in timeline.late.items() if row["customer_id"] == timeline.customers["ann"]
    ]
    assert {key: rows[key] for key in ann_events if rows[key]["customer_id"] is not None} == {}
    # Only the events that held a forgotten value were written again.
    after = written(incremental)
    rewritten = {key for key in after if after[key][0] != before[key][0]}
    assert rewritten == set(ann_events)
    assert sessions(incremental) == sessions(full)
    assert timeline.customers["ann"] not in visitor_sessions(sessions(incremental))
    assert computed_traits(incremental) == computed_traits(full)
    assert timeline.customers["ann"] not in computed_traits(incremental)


def test_a_never_merge_override_moves_history_back(tmp_path: Path) -> None:
    """Merge, then split by a never_merge override: the device's page views return to its own id."""
    project = tmp_path / "project"
    shutil.copytree(
        PROJECT, project, ignore=shutil.ignore_patterns("target", "warehouse", ".venv", "*.duckdb", "logs")
    )
    overrides = project / "seeds" / "identity" / "identity_overrides.csv"
    header = "rule,identifier_type_a,identifier_value_a,identifier_type_b,identifier_value_b,note\n"
    overrides.write_text(header)
    target = tmp_path / "target"
    db = tmp_path / "cdp.duckdb"
    raw = RawData(db)
    raw.identify(0, user_id="u-sam", email="sam@mail.org")
    pages = [page(raw, 1, "shared-laptop"), page(raw, 1.5, "shared-laptop")]
    page(raw, 3, "someone-else")  # the page window of the next build starts on day 2
    raw.flush()
    dbt_build(db, target, *BUILD, project=project)
    sam, laptop = customer_of(db, "user_id", "u-sam"), customer_of(db, "anonymous_id", "shared-laptop")
    assert sam != laptop

    raw.identify(4 * DAY, anonymous_id="shared-laptop", user_id="u-sam")  # the merge
    page(raw, 4, "someone-else")
    raw.flush()
    dbt_build(db, target, *BUILD, project=project)
    merged = events(db)
    assert customer_of(db, "anonymous_id", "shared-laptop") == sam
    assert {merged[p]["customer_id"] for p in pages} == {sam}  # outside the window: re-attributed
    merged_sessions = visitor_sessions(sessions(db))
    assert [s[1:] for s in merged_sessions[sam]] == [(1, 1), (1, 1)]  # 12 hours apart: two sessions
    assert laptop not in merged_sessions

    overrides.write_text(header + "never_merge,anonymous_id,shared-laptop,user_id,u-sam,a shared laptop\n")
    page(raw, 8, "someone-else")
    raw.flush()
    dbt_build(db, target, *BUILD, project=project)
    split = events(db)
    assert customer_of(db, "anonymous_id", "shared-laptop") == laptop
    assert {split[p]["customer_id"] for p in pages} == {laptop}
    assert all(split[p]["loaded_at"] < at(7 * DAY) for p in pages)  # re-attributed, not reloaded
    split_sessions = visitor_sessions(sessions(db))
    assert [s[1:] for s in split_sessions[laptop]] == [(1, 1), (1, 1)]
    assert sam not in split_sessions


@pytest.mark.parametrize(
    ("bad_vars", "expected"),
    [
        (
            "{cdp_events_lookback_hours: -3}",
            "var cdp_events_lookback_hours (dbt_project.yml) must be a whole number",
        ),
        (
            "{cdp_session_timeout_minutes: 0}",
            "var cdp_session_timeout_minutes (dbt_project.yml) must be a whole number",
        ),
    ],
)
def test_a_bad_window_var_stops_the_build_with_its_name(tmp_path: Path, bad_vars: str, expected: str) -> None:
    result = run_dbt(
        ["parse", "--target-path", str(tmp_path / "target"), "--vars", bad_vars],
        database=tmp_path / "cdp.duckdb",
    )
    assert not result.success
    message = "\n".join(result.failures) + str(result.exception or "")
    assert expected in message
    assert "got: " + bad_vars.split(": ")[1].rstrip("}") in message
