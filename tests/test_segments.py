"""Segments on hand-made data over two builds: enter/exit history, deterministic holdouts, the
suppression list, priority lists and declared (YAML) segments. The warehouse is the `world` fixture
of tests/test_profiles.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_profiles import (
    HOLDOUT_POPULATION,
    World,
    cdp,
    query,
    world_fixture,  # noqa: F401  (the shared fixture `world`)
)


def customer(database: Path, user_id: str) -> str:
    rows = query(database, "select customer_id from marts.customer_traits where user_id = ?", [user_id])
    assert len(rows) == 1
    return rows[0][0]


def history(database: Path, segment: str, user_id: str) -> list[tuple]:
    return query(
        database,
        "select entered_at, exited_at from marts.segment_membership_history "
        "where segment_name = ? and customer_id = ? order by entered_at",
        [segment, customer(database, user_id)],
    )


def build_times(world: World) -> tuple:
    first = query(world.first, "select distinct entered_at from marts.segment_membership_history")
    assert len(first) == 1, "every stay of the first build opens at that build's time"
    second = query(world.second, "select max(entered_at) from marts.segment_membership_history")[0][0]
    assert second > first[0][0]
    return first[0][0], second


def test_history_records_entries_and_exits_over_two_builds(world: World) -> None:
    t1, t2 = build_times(world)
    assert history(world.second, "high_value_customers", "u-vic") == [(t1, t2)]  # refunded: left
    assert history(world.second, "high_value_customers", "u-rita") == [(t2, None)]  # new order: entered
    assert history(world.second, "registered_customers", "u-wendy") == [(t1, None)]  # stayed
    assert history(world.second, "registered_customers", "u-nina") == [(t2, None)]  # signed up
    open_stays = query(
        world.second,
        "select count(*) from marts.segment_membership_history h join marts.segment_members m "
        "using (segment_name, customer_id) where h.exited_at is null",
    )[0][0]
    members = query(world.second, "select count(*) from marts.segment_members")[0][0]
    assert open_stays == members  # one open stay per current membership, no more


def test_suppressed_customer_leaves_every_segment(world: World) -> None:
    sam_first = customer(world.first, "u-sam")
    assert query(
        world.first, "select count(*) from marts.segment_members where customer_id = ?", [sam_first]
    )[0][0]
    sam = customer(world.second, "u-sam")
    assert (
        query(world.second, "select count(*) from marts.segment_members where customer_id = ?", [sam])[0][0]
        == 0
    )
    _, t2 = build_times(world)
    assert history(world.second, "registered_customers", "u-sam")[0][1] == t2


def test_holdout_split_is_deterministic_and_near_the_share(world: World) -> None:
    sql = (
        "select t.user_id, m.is_holdout from marts.segment_members m join marts.customer_traits t "
        "using (customer_id) where m.segment_name = 'registered_customers' and t.user_id like 'u-h%'"
    )
    first, second = dict(query(world.first, sql)), dict(query(world.second, sql))
    assert len(first) == HOLDOUT_POPULATION
    assert first == second  # the same customers are held out on every build
    held = sum(first.values())
    assert 0.35 * HOLDOUT_POPULATION < held < 0.65 * HOLDOUT_POPULATION  # share 0.5
    others = query(
        world.first,
        "select count(*) from marts.segment_members where is_holdout "
        "and segment_name <> 'registered_customers'",
    )[0][0]
    assert others == 0  # segments without a holdout share hold nobody out


def test_priority_list_puts_each_customer_in_the_first_matching_segment(world: World) -> None:
    sql = (
        "select t.user_id, p.segment_name, p.priority from marts.segment_priority_members p "
        "join marts.customer_traits t using (customer_id) where p.list_name = 'journey' "
        "and t.user_id in ('u-vic', 'u-rita', 'u-wendy')"
    )
    assert sorted(query(world.first, sql)) == [
        ("u-rita", "registered_customers", 2),
        ("u-vic", "high_value_customers", 1),
        ("u-wendy", "registered_customers", 2),
    ]
    assert sorted(query(world.second, sql)) == [
        ("u-rita", "high_value_customers", 1),
        ("u-vic", "registered_customers", 2),
        ("u-wendy", "registered_customers", 2),
    ]
    dupes = query(
        world.second,
        "select count(*) - count(distinct list_name || customer_id) from marts.segment_priority_members",
    )[0][0]
    assert dupes == 0


def test_declared_segment_is_built_from_its_where(world: World) -> None:
    registered = query(world.first, "select count(*) from marts.customer_traits where is_registered")[0][0]
    declared = query(
        world.first,
        "select count(*) from segments.declared_segments where segment_name = 'registered_customers'",
    )[0][0]
    assert declared == registered > HOLDOUT_POPULATION


def test_cli_segment_list_shows_description_owner_and_size(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = cdp(world, monkeypatch, "segment", "list")
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    registered = query(
        world.second,
        "select count(*) from marts.segment_members where segment_name = 'registered_customers' "
        "and not is_holdout",
    )[0][0]
    assert lines["registered_customers"].split()[1] == str(registered)
    assert (
        "qa" in lines["registered_customers"] and "Customers with an account" in lines["registered_customers"]
    )
    assert "growth" in lines["high_value_customers"] and "net lifetime value" in lines["high_value_customers"]
    assert "declared" in lines["registered_customers"]


def test_cli_segment_preview_masks_and_shows_size_over_builds(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = cdp(world, monkeypatch, "segment", "preview", "high_value_customers")
    assert "high_value_customers: 1 members, 0 held out" in out
    assert "u***@mail.org" in out and "u-rita@mail.org" not in out
    t1, t2 = build_times(world)
    history = [
        line.split() for line in out.split("Size after each build:")[1].splitlines()[3:] if line.strip()
    ]
    # built_at (date, time), members, entered, exited
    assert [row[2:] for row in history] == [["1", "1", "0"], ["1", "1", "1"]]
    assert history[0][1] == t1.strftime("%H:%M:%S") and history[1][1] == t2.strftime("%H:%M:%S")


def test_cli_segment_overlap(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    out = cdp(world, monkeypatch, "segment", "overlap", "registered_customers", "recent_signups")
    both = query(
        world.second,
        "select count(*) from marts.segment_members a join marts.segment_members b using (customer_id) "
        "where a.segment_name = 'registered_customers' and b.segment_name = 'recent_signups' "
        "and not a.is_holdout and not b.is_holdout",
    )[0][0]
    assert f"both: {both:,};" in out and both > 0


def test_cli_segment_preview_unknown_name_suggests(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from reverse_etl.cli import cli

    monkeypatch.setenv("DBT_TARGET_PATH", str(world.manifest_dir))
    result = CliRunner().invoke(
        cli, ["--database", str(world.second), "segment", "preview", "high_value_customer"]
    )
    assert result.exit_code != 0 and "did you mean 'high_value_customers'" in result.output
