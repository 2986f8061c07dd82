"""Crash safety: a sync killed with SIGKILL at random points resumes with no record lost, and resends at
most the batches that were in flight when it died."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import reverse_etl
from reverse_etl.emulators.webhook import WebhookEmulator
from reverse_etl.sync.config import load_sync
from reverse_etl.sync.engine import run_sync
from reverse_etl.warehouse import Warehouse

from .helpers import SECRET_ENV, create_people, expected_state, sync_dict, write_sync

REPO = Path(reverse_etl.__file__).resolve().parents[1]
RUNNER = (
    "import sys\n"
    "from reverse_etl.cli import CdpContext\n"
    "from reverse_etl.sync.cli import sync_group\n"
    "sync_group(['run', 'people', '--no-progress'], obj=CdpContext(None, sys.argv[1]), standalone_mode=True)\n"
)


def _run_until_done(
    db: Path, syncs: Path, emulator: WebhookEmulator, rng: random.Random, max_kills: int
) -> tuple[int, int]:
    """Start the sync in a subprocess and SIGKILL it at random points until a run completes.
    Returns (kills, runs)."""
    env = {
        **os.environ,
        "CDP_SYNCS_DIR": str(syncs),
        "CDP_PROJECT_DIR": str(REPO),
        SECRET_ENV: emulator.secret,
    }
    kills = runs = 0
    while True:
        runs += 1
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(db)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killed = False
        if kills < max_kills:
            # Kill after a random number of requests reached the receiver, plus a random delay, so the
            # process dies before, during and after acknowledgements and commits.
            target = emulator.request_count + rng.randint(0, 25)
            deadline = time.monotonic() + 60
            while proc.poll() is None and emulator.request_count < target and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed = True
        out, err = proc.communicate(timeout=120)
        if killed:
            kills += 1
            continue
        assert proc.returncode == 0, f"sync run failed:\n{out}\n{err}"
        return kills, runs


def _scenario(tmp_path: Path, emulator: WebhookEmulator, *, kills: int, concurrency: int, seed: int) -> None:
    rng = random.Random(seed)
    db = tmp_path / "warehouse" / "cdp.duckdb"
    syncs = tmp_path / "syncs"
    batch = 20
    destination: dict[str, Any] = {
        "type": "webhook",
        "url": emulator.url,
        "secret": SECRET_ENV,
        "requests_per_second": 60,
        "max_concurrency": concurrency,
    }
    write_sync(syncs, "people", sync_dict(emulator.url, destination=destination, batch_size=batch))
    with Warehouse(db) as wh:
        create_people(wh, 2000)

    total_kills = 0
    k, _ = _run_until_done(db, syncs, emulator, rng, kills)
    total_kills += k
    with Warehouse(db) as wh:
        assert emulator.records == expected_state(wh)
        wh.execute("update main.people set score = score + 1 where id % 3 = 0")
        wh.execute("delete from main.people where id % 11 = 0")
    k, _ = _run_until_done(db, syncs, emulator, rng, kills)
    total_kills += k

    with Warehouse(db) as wh:
        assert emulator.records == expected_state(wh), "the receiver must hold exactly the source"
        # resent beyond the in-flight batches of each kill: none
        assert emulator.duplicates() <= total_kills * batch * concurrency
        states = wh.query(
            "select status, count(*) as n from cdp_sync.sync_state where sync_name = 'people' group by 1"
        )
        no_consent = wh.scalar("select count(*) from main.people where not consent_email_marketing")
        assert sorted(states, key=lambda r: r["status"]) == [
            {"status": "invalid", "n": no_consent},  # remembered so they are recorded once, not every run
            {"status": "synced", "n": len(expected_state(wh))},
        ]
        unfolded = wh.scalar("select count(*) from cdp_sync.sync_runs where not folded")
        assert unfolded == 0
        interrupted = wh.scalar("select count(*) from cdp_sync.sync_runs where status = 'interrupted'")
        assert interrupted <= total_kills
        config = load_sync(syncs, "people")
        again = run_sync(config, wh)
        assert (again.added, again.changed, again.removed, again.requests) == (0, 0, 0, 0)
    assert total_kills >= 1


def test_killed_runs_resume_without_loss(tmp_path: Path, emulator: WebhookEmulator) -> None:
    _scenario(tmp_path, emulator, kills=2, concurrency=1, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_runs_resume_without_loss_many_kills(
    tmp_path: Path, emulator: WebhookEmulator, seed: int
) -> None:
    _scenario(tmp_path, emulator, kills=10, concurrency=3, seed=seed)
