"""A sync from the demo warehouse to each emulator ends with the emulator holding exactly the segment.

One small warehouse is generated and built with dbt for the module. For every destination, a real sync
(parsed from YAML, run by the engine, over loopback HTTP) sends ``high_value_customers`` to the vendor's
emulator, configured with the settings ``cdp emulate`` prints; the emulator's state (audience members,
list members, contacts) is then compared with the sendable segment rows, key by key or hash by hash.
The membership then changes (rows leave, consent is revoked) and a second run must remove exactly
those people. CRMs and email tools also take an upsert of every consented profile.

Also here: the example sync files (valid, and planned against the same warehouse), run alerts posted
through the Slack destination, and the ``cdp destination list`` and ``cdp emulate`` commands.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reverse_etl.cli import cli
from reverse_etl.destinations import REGISTRY as DESTINATIONS
from reverse_etl.destinations import destination_class
from reverse_etl.destinations import hashing as h
from reverse_etl.destinations.base import Record, SyncContext
from reverse_etl.emulators import REGISTRY as EMULATORS
from reverse_etl.emulators import Emulator, FaultConfig, emulator_class
from reverse_etl.emulators.cli import connection
from reverse_etl.privacy import effective_purposes
from reverse_etl.project import syncs_dir
from reverse_etl.sync import RunSummary, SyncConfig, load_syncs, parse_sync, plan_sync, run_sync
from reverse_etl.sync.state import load_destination_state
from reverse_etl.warehouse import MARTS_SCHEMA, Warehouse

PROJECT = Path(__file__).resolve().parents[2]
SEGMENT = "high_value_customers"
CUSTOMERS = 1500
SCRATCH = "demo_sync_scratch"

Row = dict[str, Any]


# -- how each vendor identifies a person ---------------------------------------------------------


def email(row: Row) -> str | None:
    return h.normalise_email(row.get("email"))


def hashed_email(row: Row) -> str | None:
    value = email(row)
    return h.sha256_hex(value) if value else None


def hashed_email_tiktok(row: Row) -> str | None:
    value = h.normalise_email_tiktok(row.get("email"))
    return h.sha256_hex(value) if value else None


def customer_id(row: Row) -> str | None:
    return str(row["customer_id"])


def _segment_digest_members(emulator: Any) -> set[str]:
    """Who a reader of the Slack channel concludes is in the segment, digest after digest."""
    present: set[str] = set()
    for message in emulator.messages():
        heading = message["blocks"][0]["text"]["text"]
        labels = {
            match.group(1)
            for block in message["blocks"]
            if block["type"] == "section"
            for match in re.finditer(r"^• \*(.+?)\*", block["text"]["text"], re.MULTILINE)
        }
        present = present - labels if heading.endswith(" left") else present | labels
    return present


def _files_state(root: Path, sync_name: str) -> set[str]:
    """The keys a reader of the drop folder holds after applying every file, oldest first."""
    held: set[str] = set()
    for path in sorted((root / sync_name).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["_operation"] == "remove":
                held.discard(row["_key"])
            else:
                held.add(row["_key"])
    return held


@dataclass
class Case:
    """One destination: how a sync to it is written and how its emulator's state is read."""

    mode: str
    mapping: dict[str, Any]
    consent: list[str]
    identity: Callable[[Row], str | None]  # a source row as the vendor holds it; None: not sendable
    held: Callable[[Any, dict[str, Any], Path], set[str]]  # (emulator, destination state, tmp) -> held
    settings: dict[str, Any] = field(default_factory=dict)  # on top of what `cdp emulate` prints
    batch_size: int | None = 5  # small batches: several requests, and the workers run in parallel
    # The vendor refuses some rows itself (e.g. a required field): they are reported rejected.
    refused: Callable[[Row], bool] = lambda row: False


EMAIL_FIELDS = {"email": "email", "first_name": "first_name", "last_name": "last_name"}

CASES: dict[str, Case] = {
    "meta": Case(
        mode="audience",
        mapping={**EMAIL_FIELDS, "country": "country"},
        consent=["ads_personalization", "ad_user_data"],
        identity=hashed_email,
        held=lambda em, st, _: em.members(st["audience_id"]),
    ),
    "google_ads": Case(
        mode="audience",
        mapping={
            **EMAIL_FIELDS,
            "country": "country",
            "consent_ad_user_data": "consent_ad_user_data",
            "consent_ad_personalization": "consent_ads_personalization",
        },
        consent=["ads_personalization", "ad_user_data"],
        identity=hashed_email,
        held=lambda em, st, _: em.list_identifiers(st["user_list"]),
        batch_size=None,  # three requests per batch at one request per second
    ),
    "tiktok": Case(
        mode="mirror",
        mapping={"email": "email"},
        consent=["ads_personalization", "ad_user_data"],
        identity=hashed_email_tiktok,
        held=lambda em, st, _: em.members(st["audience_id"]),
    ),
    "linkedin": Case(
        mode="audience",
        mapping={**EMAIL_FIELDS, "country": "country"},
        consent=["ads_personalization", "ad_user_data"],
        identity=hashed_email,
        held=lambda em, st, _: em.members(st["segment_id"]),
    ),
    "hubspot": Case(
        mode="audience",
        mapping={"email": "email", "firstname": "first_name", "lastname": "last_name"},
        consent=["email_marketing"],
        identity=email,
        held=lambda em, st, _: em.list_member_emails(st["list_id"]),
    ),
    "klaviyo": Case(
        mode="audience",
        mapping={**EMAIL_FIELDS, "external_id": "customer_id"},
        consent=["email_marketing"],
        identity=email,
        held=lambda em, st, _: em.list_member_emails(st["list_id"]),
        batch_size=None,  # import jobs are polled: fewer, larger batches
    ),
    "braze": Case(
        mode="audience",
        mapping={"external_id": "customer_id", **EMAIL_FIELDS},
        consent=["email_marketing"],
        identity=customer_id,
        held=lambda em, st, _: {
            key.split(":", 1)[1]
            for key, user in em.users.items()
            if key.startswith("external_id:") and user.get("cdp_demo_braze") is True
        },
    ),
    "mailchimp": Case(
        mode="audience",
        mapping=EMAIL_FIELDS,
        consent=["email_marketing"],
        identity=email,
        held=lambda em, st, _: em.segment_emails(next(iter(em.lists)), st["segment_id"]),
        settings={"default_status": "subscribed"},
    ),
    "salesforce": Case(
        mode="audience",
        mapping={"Email_Key__c": "email", "FirstName": "first_name", "LastName": "last_name"},
        consent=["email_marketing"],
        identity=lambda row: str(row["email"]).strip() if row.get("email") and row.get("last_name") else None,
        held=lambda em, st, _: em.with_field("Contact", st["audience_field"]),
        refused=lambda row: bool(row.get("email")) and not row.get("last_name"),  # LastName is required
    ),
    "iterable": Case(
        mode="audience",
        mapping=EMAIL_FIELDS,
        consent=["email_marketing"],
        identity=email,
        held=lambda em, st, _: em.list_members(st["list_id"]),
    ),
    "customerio": Case(
        mode="audience",
        mapping={"customer_id": "customer_id", **EMAIL_FIELDS},
        consent=["email_marketing"],
        identity=customer_id,
        held=lambda em, st, _: em.segment_members(st["segment_id"]),
    ),
    "slack": Case(
        mode="audience",
        mapping={"email": "email", "lifetime_value": "lifetime_value"},
        consent=["email_marketing"],
        identity=email,
        held=lambda em, st, _: _segment_digest_members(em),
        settings={"fields": ["lifetime_value"]},
        batch_size=None,  # one message per second
    ),
    "webhook": Case(
        mode="audience",
        mapping={**EMAIL_FIELDS, "lifetime_value": "lifetime_value"},
        consent=["email_marketing"],
        identity=lambda row: str(row["customer_id"]) if row.get("email") else None,
        held=lambda em, st, _: set(em.records),
        settings={"required_fields": ["email"]},
    ),
    "files": Case(
        mode="mirror",
        mapping={**EMAIL_FIELDS, "lifetime_value": "lifetime_value"},
        consent=["email_marketing"],
        identity=customer_id,
        held=lambda em, st, tmp: _files_state(tmp / "exports", "demo_files"),
    ),
}

# CRMs and email tools: every consented profile, upserted by email (or id), from the dbt model.
UPSERT_HELD: dict[str, Callable[[Any], set[str]]] = {
    "hubspot": lambda em: em.emails(),
    "klaviyo": lambda em: em.emails(),
    "braze": lambda em: {k.split(":", 1)[1] for k in em.users if k.startswith("external_id:")},
    "mailchimp": lambda em: {m["email_address"] for m in em.lists[next(iter(em.lists))]["members"].values()},
    "salesforce": lambda em: {r.get("Email_Key__c") for r in em.records["Contact"].values()},
    "iterable": lambda em: set(em.users),
    "customerio": lambda em: {p.get("id") for p in em.people.values()},
}


def test_every_destination_has_a_demo_case() -> None:
    assert set(CASES) == set(DESTINATIONS), "add a Case for each destination"
    assert set(CASES) - {"files"} == set(EMULATORS)
    for name, case in CASES.items():
        assert case.mode in destination_class(name).modes, name
    for name in UPSERT_HELD:
        assert "upsert" in destination_class(name).modes, name


# -- the warehouse -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated raw data built by dbt; ``<dir>/target`` holds the manifest a ``model:`` source reads."""
    from reverse_etl.datagen import generate
    from reverse_etl.dbt import run_dbt

    root = tmp_path_factory.mktemp("demo_syncs")
    database = root / "cdp.duckdb"
    generate(database, CUSTOMERS)
    result = run_dbt(
        # Own target and log paths: partial parsing and log rotation never meet another build's. The
        # models' own tests run elsewhere; here they would only double the module's time.
        ["build", "--target-path", str(root / "target"), "--log-path", str(root / "logs")]
        + ["--exclude", "resource_type:test"],
        project=PROJECT,
        database=database,
        quiet=True,
    )
    if not result.success:
        pytest.fail("dbt build failed:\n" + "\n".join(result.failures) + f"\n{result.exception or ''}")
    with Warehouse(database) as wh:
        wh.execute(f"create schema if not exists {SCRATCH}")
    return root


@pytest.fixture
def wh(built: Path) -> Iterator[Warehouse]:
    warehouse = Warehouse(built / "cdp.duckdb")
    try:
        yield warehouse
    finally:
        warehouse.close()


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator | None]:
    name = request.node.callspec.params["name"]
    if name not in EMULATORS:
        yield None
        return
    em = emulator_class(name)()
    em.start()
    try:
        yield em
    finally:
        em.stop()


def settings_for(
    name: str, emulator: Emulator | None, tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """What `cdp emulate` prints for this emulator, with its credentials exported."""
    if emulator is None:  # files: a drop folder
        return {"type": "files", "path": str(tmp / "exports"), "format": "jsonl"}
    link = connection(name, emulator)
    for variable, value in link.env.items():
        monkeypatch.setenv(variable, value)
    return dict(link.settings)


def sync_config(
    sync_name: str, source: dict[str, str], case: Case, destination: dict[str, Any], tmp: Path
) -> SyncConfig:
    data: dict[str, Any] = {
        "name": sync_name,
        "source": source,
        "destination": {**destination, **case.settings},
        "mode": case.mode,
        "primary_key": "customer_id",
        "mapping": case.mapping,
        "consent": case.consent,
        "retry": {"max_attempts": 3, "initial_delay": 0.05, "max_delay": 0.5},
    }
    if case.batch_size:
        data["batch_size"] = case.batch_size
    return parse_sync(data, tmp / f"{sync_name}.yml")


def expected(case: Case, config: SyncConfig, rows: list[Row]) -> tuple[set[str], int]:
    """Identities of the rows a sync must deliver, and how many rows the vendor will refuse. Consent
    is the sync's purposes plus those its destination needs (ad platforms: see reverse_etl/privacy.py)."""
    purposes = effective_purposes(config)
    assert set(case.consent) <= set(purposes)
    consented = [r for r in rows if all(r.get(f"consent_{p}") for p in purposes)]
    refused = sum(1 for r in consented if case.refused(r))
    return {i for r in consented if not case.refused(r) and (i := case.identity(r)) is not None}, refused


def segment_rows(wh: Warehouse, relation: str, where: str = "", params: list[Any] | None = None) -> list[Row]:
    return wh.query(f"select * from {relation} {where}", params or [])


def assert_ok(summary: RunSummary, refused: int) -> None:
    assert summary.error is None, summary.error
    assert summary.failed == 0
    assert summary.rejected == refused, summary
    assert summary.status == ("partial" if refused else "success"), summary


# -- the issue: segment -> emulator, then removals -------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_segment_sync_leaves_the_emulator_holding_the_segment(
    name: str,
    built: Path,
    wh: Warehouse,
    emulator: Emulator | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = CASES[name]
    sync_name = f"demo_{name}"
    destination = settings_for(name, emulator, tmp_path, monkeypatch)
    config = sync_config(sync_name, {"segment": SEGMENT}, case, destination, tmp_path)

    summary = run_sync(config, wh, project=built)
    members = segment_rows(
        wh,
        f"{MARTS_SCHEMA}.segment_members",
        "where segment_name = ? and not coalesce(is_holdout, false)",
        [SEGMENT],
    )
    want, refused = expected(case, config, members)
    assert_ok(summary, refused)
    assert len(want) >= 5, "the demo segment should have sendable members"
    assert summary.delivered == len(want)
    held = case.held(emulator, load_destination_state(wh, sync_name), tmp_path)
    assert len(held) == len(want)
    assert held == want

    # The segment changes: a third of the members leave, two more revoke consent.
    table = f"{SCRATCH}.{sync_name}"
    wh.execute(
        f"create or replace table {table} as select * from {MARTS_SCHEMA}.segment_members "
        "where segment_name = ? and not coalesce(is_holdout, false)",
        [SEGMENT],
    )
    delivered_keys = sorted(str(r["customer_id"]) for r in members if case.identity(r) in want)
    leaving = delivered_keys[::3]
    revoking = [k for k in delivered_keys if k not in leaving][:2]
    wh.execute(f"delete from {table} where customer_id in (select unnest(?))", [leaving])
    revoke = ", ".join(f"consent_{p} = false" for p in case.consent)
    wh.execute(f"update {table} set {revoke} where customer_id in (select unnest(?))", [revoking])
    changed = sync_config(sync_name, {"table": table}, case, destination, tmp_path)

    second = run_sync(changed, wh, project=built)
    want_after, refused_after = expected(case, changed, segment_rows(wh, table))
    assert_ok(second, refused_after)
    assert second.removed == len(leaving) + len(revoking)
    assert second.added + second.changed == refused_after  # refused rows stay pending: sent again
    held_after = case.held(emulator, load_destination_state(wh, sync_name), tmp_path)
    assert held_after == want_after
    assert held_after == want - {
        case.identity(r) for r in members if str(r["customer_id"]) in {*leaving, *revoking}
    }

    third = run_sync(changed, wh, project=built)  # nothing changed: nothing is delivered
    assert (third.delivered, third.removed, third.rejected) == (0, 0, refused_after)
    if not refused_after:
        assert third.requests == 0


# -- CRMs and email tools: every consented profile ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(UPSERT_HELD))
def test_profile_upsert_leaves_the_emulator_holding_every_consented_profile(
    name: str,
    built: Path,
    wh: Warehouse,
    emulator: Emulator | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = CASES[name]
    case = Case(
        mode="upsert",
        mapping=base.mapping,
        consent=["email_marketing"],
        identity=base.identity,
        held=base.held,
        settings=base.settings,
        batch_size=None,  # the vendor's own limit
        refused=base.refused,
    )
    destination = settings_for(name, emulator, tmp_path, monkeypatch)
    config = sync_config(f"profiles_{name}", {"model": "customer_profiles"}, case, destination, tmp_path)

    summary = run_sync(config, wh, project=built)
    want, refused = expected(case, config, segment_rows(wh, f"{MARTS_SCHEMA}.customer_profiles"))
    assert_ok(summary, refused)
    assert len(want) > 100
    held = UPSERT_HELD[name](emulator)
    assert len(held) == len(want)
    assert held == want
    again = run_sync(config, wh, project=built)
    assert again.delivered == 0 and again.rejected == refused  # only the refused rows are retried


# -- the example sync files --------------------------------------------------------------------------

EXAMPLES = PROJECT / "syncs" / "examples"
# Plausible values for the secrets the examples name; planning sends nothing.
DUMMY_SECRETS = {"webhook_url": "https://hooks.slack.com/services/T0/B0/XXXX", "api_key": "key-us6"}


def test_examples_are_not_project_syncs() -> None:
    """Examples live in a sub-folder that `cdp sync` does not read."""
    syncs, errors = load_syncs(syncs_dir(PROJECT))
    assert syncs, "the project's own syncs should load"
    for config in syncs.values():
        assert config.path.parent == syncs_dir(PROJECT)
    assert not any(e.path and EXAMPLES in e.path.parents for e in errors)


def test_every_vendor_has_an_example_that_plans_on_the_demo_warehouse(
    built: Path, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples, errors = load_syncs(EXAMPLES)
    assert [str(e) for e in errors] == []
    assert {c.destination.type for c in examples.values()} == set(DESTINATIONS) - {"webhook", "files"}
    for name, config in sorted(examples.items()):
        assert config.description and config.schedule, f"{name}: say what it is for and when it runs"
        cls = destination_class(config.destination.type)
        for spec in cls.settings_spec:
            if spec.secret and spec.name in config.destination.settings:
                monkeypatch.setenv(config.destination.settings[spec.name], DUMMY_SECRETS.get(spec.name, "x"))
        plan = plan_sync(config, wh, project=built)  # the source and every mapped column exist
        assert plan.counts["add"] > 0 and plan.requests, name
        reasons = set(plan.invalid_reasons)
        assert not reasons & {"duplicate primary key", "null primary key"}, (name, reasons)


# -- run alerts through the Slack destination ---------------------------------------------------------


def test_slack_alerts_wait_out_a_throttle_and_name_a_dead_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    from reverse_etl.emulators.slack import SlackEmulator
    from reverse_etl.sync.alerts import post_slack

    with SlackEmulator(FaultConfig(throttle_every=1, retry_after=0.25)) as em:
        link = connection("slack", em)
        for variable, value in link.env.items():
            monkeypatch.setenv(variable, value)
        url = em.base_url + "/services/" + link.env[link.settings["webhook_url"]].split("/services/")[1]
        monkeypatch.setenv("T_ALERT_URL", url)
        waits: list[float] = []

        def sleep(seconds: float) -> None:  # Slack's wait is honoured; then the throttle is over
            waits.append(seconds)
            em.faults = FaultConfig()

        assert post_slack("T_ALERT_URL", "sync x failed: boom", sleep=sleep) is None
        assert waits == [0.25]
        assert [m["text"] for m in em.messages()] == ["sync x failed: boom"]

        em.faults = FaultConfig(throttle_every=1, retry_after=600)  # too long to wait after a run
        problem = post_slack("T_ALERT_URL", "again", sleep=sleep)
        assert problem and "after 1 attempt" in problem and "429" in problem

        em.faults = FaultConfig()
        em.archive()
        problem = post_slack("T_ALERT_URL", "again", sleep=sleep)
        assert problem and "channel_is_archived" in problem and url not in problem
    assert (
        post_slack("T_UNSET_URL", "x") == "slack alert not sent: environment variable T_UNSET_URL is not set"
    )


# -- the CLI ----------------------------------------------------------------------------------------


def test_destination_list_shows_every_destination() -> None:
    result = CliRunner().invoke(cli, ["destination", "list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    for name in DESTINATIONS:
        cls = destination_class(name)
        assert name in lines, f"{name} missing from `cdp destination list`"
        line = lines[name]
        assert cls.title in line and f"{cls.limits.max_batch_size:,}" in line
        for spec in cls.settings_spec:
            if spec.required:
                assert spec.name + ("*" if spec.secret else "") in line, (name, spec.name)
    assert "access_token*" in lines["meta"] and "ad_account_id*" not in lines["meta"]
    as_json = CliRunner().invoke(cli, ["destination", "list", "--json", "meta", "webhook"])
    infos = {i["name"]: i for i in json.loads(as_json.output)}
    assert set(infos) == {"meta", "webhook"}
    assert infos["meta"]["max_batch_size"] == 10_000 and infos["meta"]["requests_per_second"] == 2.0
    assert {s["name"] for s in infos["meta"]["settings"] if s["secret"]} == {"access_token", "app_secret"}
    unknown = CliRunner().invoke(cli, ["destination", "list", "metaa"])
    assert unknown.exit_code != 0 and "unknown destination" in unknown.output


def test_emulate_help_and_unknown_destination() -> None:
    help_text = CliRunner().invoke(cli, ["emulate", "--help"])
    assert help_text.exit_code == 0
    for option in ("--port", "--throttle-every", "--error-5xx-every", "--auth-failure", "--max-requests"):
        assert option in help_text.output
    files = CliRunner().invoke(cli, ["emulate", "files"])
    assert files.exit_code != 0 and "needs no emulator" in files.output


def test_emulate_webhook_receives_one_signed_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cdp emulate webhook` in its own process: the printed settings are enough to send to it."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reverse_etl.cli",
            "emulate",
            "webhook",
            "--max-requests",
            "2",
            "--duration",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
    )
    try:
        assert proc.stdout is not None
        banner: list[str] = []
        for line in proc.stdout:
            banner.append(line)
            if line.startswith("Requests:"):
                break
        text = "".join(banner)
        exports = dict(re.findall(r"export (\w+)=(\S+)", text))
        url = re.search(r"url: (http://127\.0\.0\.1:\d+/webhook)", text)
        assert url and exports, text
        block = {"url": url.group(1), "secret": next(iter(exports))}
        for variable, value in exports.items():
            monkeypatch.setenv(variable, value)
        dest = destination_class("webhook")(block)
        context = SyncContext(sync_name="emulate", mode="upsert", primary_key="id")
        results = dest.send_batch("upsert", [Record("k1", {"email": "a@example.com"})], context)
        assert [r.ok for r in results] == [True]
        dest.keys = [b"not-the-emulator-secret-1234"]
        assert not dest.check().ok  # a wrongly signed request is refused with 401
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = [line for line in out.splitlines() if re.search(r"POST +/webhook", line)]
    assert len(lines) == 2, out
    assert "-> 200" in lines[0] and "-> 401" in lines[1]
    assert "stopped after 2 request(s)" in out  # and the process ended by itself
