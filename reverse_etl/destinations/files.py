"""Local files: CSV, JSON Lines or Parquet, for hand-offs, audits and tools that read a drop folder.

Layout under ``path``: with ``file_per_run: true`` (default) each run writes ``<sync>/<run>.<ext>``;
with ``file_per_run: false`` CSV and JSONL runs append to ``<sync>.<ext>``. Parquet cannot be appended
to, so each acknowledged batch is its own file ``<sync>/<run>/part-NNNNN.parquet`` (written to a
temporary name and renamed, so a killed run never leaves a half-written part). Modes that change or
remove records (upsert, update, mirror, audience) add an ``_operation`` column; every file has ``_key``.

Batch limit: 10,000 records per write. No rate limit; one writer at a time. A batch counts as delivered
once it is flushed to disk (``fsync``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reverse_etl.destinations.base import (
    MODES,
    CheckResult,
    ConfigError,
    Destination,
    Limits,
    PlannedRequest,
    Record,
    RecordResult,
    SettingSpec,
    SyncContext,
    TerminalError,
)

FORMATS = ("csv", "jsonl", "parquet")
OPERATION_MODES = ("upsert", "update", "mirror", "audience")


class FilesDestination(Destination):
    name = "files"
    title = "Local files (CSV, JSONL, Parquet)"
    modes = MODES
    limits = Limits(max_batch_size=10_000, requests_per_second=None, max_concurrency=1)
    settings_spec = (
        SettingSpec("path", help="directory to write into, e.g. exports/"),
        SettingSpec("format", required=False, default="jsonl", help="csv, jsonl or parquet"),
        SettingSpec(
            "file_per_run", required=False, default=True, help="one file per run (true) or append (false)"
        ),
    )

    def __init__(self, settings: Mapping[str, Any], *, source: str = "<settings>") -> None:
        super().__init__(settings, source=source)
        fmt = self.settings["format"]
        if fmt not in FORMATS:
            raise ConfigError(f"{source}: format {fmt!r} is not one of {', '.join(FORMATS)}")
        if not isinstance(self.settings["file_per_run"], bool):
            raise ConfigError(f"{source}: file_per_run must be true or false")
        self.format: str = fmt
        self.root = Path(str(self.settings["path"])).expanduser()
        self.per_run: bool = self.settings["file_per_run"] or fmt == "parquet"
        # One destination instance serves one run: its files are named after the moment it started.
        self.run_label = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f") + "-" + secrets.token_hex(3)
        self._parts = 0
        self._lock = threading.Lock()

    def check(self) -> CheckResult:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".cdp-check-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            return CheckResult(False, f"cannot write to {self.root}: {exc}")
        return CheckResult(True, f"{self.root} is writable")

    # -- layout ----------------------------------------------------------------------------------

    def target(self, context: SyncContext) -> Path:
        if self.format == "parquet":
            return self.root / context.sync_name / self.run_label / f"part-{self._parts + 1:05d}.parquet"
        if self.per_run:
            return self.root / context.sync_name / f"{self.run_label}.{self.format}"
        return self.root / f"{context.sync_name}.{self.format}"

    @staticmethod
    def rows(operation: str, records: Sequence[Record], context: SyncContext) -> list[dict[str, Any]]:
        with_op = context.mode in OPERATION_MODES
        out = []
        for r in records:
            row: dict[str, Any] = {"_operation": operation} if with_op else {}
            row["_key"] = r.key
            row.update({k: v for k, v in r.fields.items() if k not in ("_operation", "_key")})
            out.append(row)
        return out

    def _encode(self, rows: list[dict[str, Any]], columns: list[str], header: bool) -> bytes:
        if self.format == "jsonl":
            return "".join(json.dumps(r, default=str, separators=(",", ":")) + "\n" for r in rows).encode()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="raise", lineterminator="\n")
        if header:
            writer.writeheader()
        for r in rows:
            writer.writerow({c: _csv_value(r.get(c)) for c in columns})
        return buf.getvalue().encode()

    def build_request(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> PlannedRequest:
        """The write this batch becomes: ("WRITE", file path, {}, bytes) (Parquet: the rows as JSON)."""
        rows = self.rows(operation, records, context)
        path = self.target(context)
        if self.format == "parquet":
            return "WRITE", str(path), {"format": "parquet"}, rows
        columns = _columns(rows)
        header = self.format == "csv" and not path.exists()
        return "WRITE", str(path), {"format": self.format}, self._encode(rows, columns, header)

    # -- writing ---------------------------------------------------------------------------------

    def send_batch(
        self, operation: str, records: Sequence[Record], context: SyncContext
    ) -> list[RecordResult]:
        rows = self.rows(operation, records, context)
        with self._lock:
            path = self.target(context)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if self.format == "parquet":
                    self._write_parquet(path, rows)
                    self._parts += 1
                else:
                    self._append_text(path, rows)
            except OSError as exc:
                raise TerminalError(f"cannot write {path}: {exc}") from exc
        return [RecordResult(r.key, ok=True) for r in records]

    def _append_text(self, path: Path, rows: list[dict[str, Any]]) -> None:
        columns = _columns(rows)
        header = False
        if self.format == "csv":
            if path.exists() and path.stat().st_size:
                with path.open(newline="") as fh:
                    existing = next(csv.reader(fh), [])
                extra = [c for c in columns if c not in existing]
                if extra:
                    raise TerminalError(
                        f"{path} has columns {existing}; this sync also writes {extra}: "
                        "set file_per_run: true or point path at a new directory"
                    )
                columns = existing  # a removal may carry fewer fields: those cells stay empty
            else:
                header = True
        data = self._encode(rows, columns, header)
        with path.open("ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    @staticmethod
    def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows)
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for r in rows:
        columns.extend(c for c in r if c not in columns)
    return columns


def _csv_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
