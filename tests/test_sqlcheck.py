"""The --where checker: one read-only boolean expression over columns, or a clear refusal; and
`cdp segment preview --where` on the built warehouse of tests/test_profiles.py."""

from __future__ import annotations

import duckdb
import pytest

from reverse_etl.sqlcheck import UnsafeFilterError, check_where
from tests.test_profiles import (
    World,
    cdp,
    query,
    world_fixture,  # noqa: F401  (the shared fixture `world`)
)


@pytest.mark.parametrize(
    ("where", "rendered"),
    [
        ("orders > 1", "orders > 1"),
        ("country = 'DE' and not is_holdout", "country = 'DE' AND NOT is_holdout"),
        ("lower(email) like '%@mail.org'", "LOWER(email) LIKE '%@mail.org'"),
        ("email ilike 'U-%'", "email ILIKE 'U-%'"),
        ("country in ('DE', 'FR')", "country IN ('DE', 'FR')"),
        ("phone is null or first_name is not null", "phone IS NULL OR NOT first_name IS NULL"),
        ("lifetime_value between 10 and 100.5", "lifetime_value BETWEEN 10 AND 100.5"),
        ("coalesce(orders, 0) * 2 + 1 >= 3", "COALESCE(orders, 0) * 2 + 1 >= 3"),
        ("round(abs(lifetime_value), 1) <> 0", "ROUND(ABS(lifetime_value), 1) <> 0"),
        ("length(trim(upper(last_name))) > 2", "LENGTH(TRIM(UPPER(last_name))) > 2"),
        (
            "contains(email, 'rita') or starts_with(email, 'u-')",
            "CONTAINS(email, 'rita') OR STARTS_WITH(email, 'u-')",
        ),
        ("cast(orders as double) > 1.5", "CAST(orders AS DOUBLE) > 1.5"),
        ("orders > 1 -- a comment", "orders > 1"),
    ],
)
def test_allowed_filters_are_rendered(where: str, rendered: str) -> None:
    assert check_where(where) == rendered


def test_date_functions_are_allowed_and_run_in_duckdb() -> None:
    sql = check_where("date_diff('day', created_at, current_date) > 3 and year(created_at) = 2024")
    con = duckdb.connect()
    con.execute("create table t as select date '2024-01-02' as created_at")
    assert con.execute(f"select count(*) from t where {sql}").fetchone() == (1,)


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("1=1; drop table x", "semicolon"),
        ("orders > 1;", "semicolon"),
        ("(select 1)", "subquery"),
        ("customer_id in (select customer_id from marts.customer_traits)", "subquery"),
        ("exists (select 1)", "subquery"),
        ("read_csv('x') is not null", "read_csv()"),
        ("getenv('HOME') = ''", "getenv()"),
        ("my_macro(orders) > 1", "my_macro()"),
        ("drop table x", "DROP"),
        ("delete from x", "DELETE"),
        ("insert into x values (1)", "INSERT"),
        ("update x set a = 1", "UPDATE"),
        ("create table x (a int)", "CREATE"),
        ("attach 'other.duckdb'", "ATTACH"),
        ("copy x to 'out.csv'", "COPY"),
        ("pragma version", "PRAGMA"),
        ("set threads = 1", "SET"),
        ("t.orders > 1", "qualified column"),
        ("$1 > 1", "placeholder"),
        ("orders + 1", "not a true/false condition"),
        ("", "empty"),
        ("orders >", "cannot parse"),
    ],
)
def test_refused_filters_name_what_is_wrong(where: str, named: str) -> None:
    with pytest.raises(UnsafeFilterError) as info:
        check_where(where)
    message = str(info.value)
    assert named in message and "e.g." in message
    assert isinstance(info.value, ValueError)


def test_cli_preview_where_narrows_size_and_sample(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    members = query(
        world.second,
        "select customer_id, orders, is_holdout from marts.segment_members "
        "where segment_name = 'registered_customers'",
    )
    matching = [m for m in members if (m[1] or 0) > 1 and not m[2]]
    assert 0 < len(matching) < len([m for m in members if not m[2]]), "the filter must narrow the segment"
    out = cdp(world, monkeypatch, "segment", "preview", "registered_customers", "--where", "orders > 1")
    assert f"registered_customers where orders > 1: {len(matching)} members" in out


def test_cli_preview_refuses_an_unsafe_where(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from reverse_etl.cli import cli

    monkeypatch.setenv("DBT_TARGET_PATH", str(world.manifest_dir))
    args = ["--database", str(world.second), "segment", "preview", "registered_customers"]
    unsafe = CliRunner().invoke(cli, [*args, "--where", "1=1; drop table marts.segment_members"])
    assert unsafe.exit_code == 2 and "--where" in unsafe.output and "semicolon" in unsafe.output
    unknown = CliRunner().invoke(cli, [*args, "--where", "no_such_column > 1"])
    assert (
        unknown.exit_code == 1 and "no_such_column" in unknown.output and "Its columns are:" in unknown.output
    )
