"""The watched drop folder where tenants leave file exports, and what happens to each file.

Layout, per tenant and kind of export (e.g. `thrillring/players/`):

    <drops_dir>/<tenant>/<kind>/            the inbox: drop files here
    <drops_dir>/<tenant>/processed/<kind>/  loaded (or identical to a file loaded before)
    <drops_dir>/<tenant>/quarantine/<kind>/ rejected, each with `<file>.reason.txt` beside it

A file is pending once it has been left alone for `settle_s` seconds: files still being
written (recently modified, dotfiles, `.part`/`.tmp` names) are never picked up half-written.
Files are moved with a rename, after their load has committed, so a crash never loses one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from orchestration.settings import load_settings
from orchestration.tenants import validate_tenant_id

PROCESSED = "processed"
QUARANTINE = "quarantine"
# Names writers use while a file is incomplete (browsers, rsync, scp clients, editors).
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".filepart", "~")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_candidate(name: str) -> bool:
    """Could this name be a finished export? (Not hidden, not a partial download.)"""
    lowered = name.lower()
    return not name.startswith((".", "~")) and not lowered.endswith(PARTIAL_SUFFIXES)


@dataclass(frozen=True)
class DroppedFile:
    path: Path
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        return self.path.name


def _unique_destination(folder: Path, name: str, sha256: str) -> Path:
    target = folder / name
    if not target.exists():
        return target
    stem, dot, suffix = name.partition(".")
    for counter in range(1000):
        tag = sha256[:12] if counter == 0 else f"{sha256[:12]}-{counter}"
        target = folder / f"{stem}.{tag}{dot}{suffix}"
        if not target.exists():
            return target
    raise FileExistsError(f"no free name for {name} in {folder}")


class DropFolderResource(ConfigurableResource):
    """Where tenants drop their exports (BIZOSAAS_DROPS_DIR, default <data dir>/drops)."""

    root: str | None = Field(default=None, description="The drop folder; unset: settings.drops_dir.")
    settle_s: float = Field(
        default=10.0,
        ge=0,
        description="A file modified within this many seconds is still being written and waits.",
    )

    @property
    def path(self) -> Path:
        return Path(self.root) if self.root else load_settings().drops_dir

    def folder(self, tenant_id: str, *parts: str) -> Path:
        return self.path / validate_tenant_id(tenant_id) / Path(*parts)

    def inbox(self, tenant_id: str, kind: str) -> Path:
        return self.folder(tenant_id, kind)

    def pending(self, tenant_id: str, kind: str, *, now: float | None = None) -> list[DroppedFile]:
        """Finished files waiting in the inbox, oldest first (arrival order)."""
        inbox = self.inbox(tenant_id, kind)
        if not inbox.is_dir():
            return []
        cutoff_ns = int(((now if now is not None else time.time()) - self.settle_s) * 1e9)
        files = []
        for entry in os.scandir(inbox):
            if not entry.is_file(follow_symlinks=False) or not is_candidate(entry.name):
                continue
            stat = entry.stat(follow_symlinks=False)
            if stat.st_mtime_ns <= cutoff_ns:
                files.append(DroppedFile(Path(entry.path), stat.st_size, stat.st_mtime_ns))
        return sorted(files, key=lambda f: (f.mtime_ns, f.name))

    def archive(
        self, path: Path, tenant_id: str, kind: str, sha256: str, note: str | None = None
    ) -> Path | None:
        """Move a loaded file (or a copy of one) to processed/, with an optional note beside it.
        None when another run (a sensor's, a schedule's) filed it away first: the file is where it
        belongs, and the run that loaded it must not fail after its commit."""
        folder = self.folder(tenant_id, PROCESSED, kind)
        folder.mkdir(parents=True, exist_ok=True)
        target = _unique_destination(folder, path.name, sha256)
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return None
        if note:
            target.with_name(target.name + ".note.txt").write_text(note)
        return target

    def quarantine(self, path: Path, tenant_id: str, kind: str, sha256: str, reason: str) -> Path:
        """Move a rejected file to quarantine/ with `<file>.reason.txt` saying what to fix."""
        folder = self.folder(tenant_id, QUARANTINE, kind)
        folder.mkdir(parents=True, exist_ok=True)
        target = _unique_destination(folder, path.name, sha256)
        # The reason first: a quarantined file is never without its explanation.
        target.with_name(target.name + ".reason.txt").write_text(reason)
        os.replace(path, target)
        return target

    def seed(self, source: Path, tenant_ids: list[str], kinds: tuple[str, ...]) -> list[Path]:
        """Copy bundled exports (`<source>/<tenant>/<kind>/*`) into the tenants' inboxes, unless
        a file of the same content is already waiting or was processed. Copies are written under
        a partial name and renamed, and dated a little in the past in file-name order, so they
        are pending at once and arrive in order."""
        copied: list[Path] = []
        for tenant_id in tenant_ids:
            for kind in kinds:
                bundled = sorted(p for p in (source / tenant_id / kind).glob("*") if p.is_file())
                if not bundled:
                    continue
                inbox = self.inbox(tenant_id, kind)
                inbox.mkdir(parents=True, exist_ok=True)
                present = {
                    file_sha256(p)
                    for folder in (inbox, self.folder(tenant_id, PROCESSED, kind))
                    if folder.is_dir()
                    for p in folder.iterdir()
                    if p.is_file() and is_candidate(p.name) and not p.name.endswith(".txt")
                }
                base = time.time() - self.settle_s - 60
                for index, path in enumerate(bundled):
                    if file_sha256(path) in present:
                        continue
                    partial = inbox / f".{path.name}.part"
                    shutil.copyfile(path, partial)
                    stamp = base + index
                    os.utime(partial, (stamp, stamp))
                    os.replace(partial, inbox / path.name)
                    copied.append(inbox / path.name)
        return copied


def seed_demo_drops(settings) -> list[Path]:
    """The demo's exports (fixtures/drops/<tenant>/<kind>/) copied into the drop folder, once:
    a file already waiting or processed is not copied again (and the load ledger would refuse
    to load the same content twice anyway)."""
    from ml.crm.exports import KINDS as CRM_KINDS
    from ml.gaming.exports import KINDS

    source = Path(settings.fixtures_dir) / "drops"
    if not source.is_dir():
        return []
    tenant_ids = sorted(p.name for p in source.iterdir() if p.is_dir())
    return DropFolderResource(root=str(settings.drops_dir), settle_s=0).seed(
        source, tenant_ids, (*KINDS, *CRM_KINDS)
    )


# --- loading one dropped file ------------------------------------------------------------------


@dataclass
class FileOutcome:
    name: str
    status: str  # loaded | loaded_before | duplicate | rejected | gone
    records: int = 0
    entries: int = 0
    detail: str = ""
    moved_to: str = ""


def ledger_entry(conn, ledger_table: str, tenant_id: str, sha256: str):
    """(file_name, loaded_at, dagster_run_id) of the load of this content, or None."""
    return conn.execute(
        f"SELECT file_name, loaded_at, dagster_run_id FROM {ledger_table} "
        "WHERE tenant_id = %s AND sha256 = %s",
        (tenant_id, sha256),
    ).fetchone()


def process_drop(
    warehouse,
    drops: DropFolderResource,
    tenant_id: str,
    kind: str,
    path: Path,
    *,
    ledger_table: str,
    validate: Callable[[Any, str, bytes], Any],
    load: Callable[[Any, str, str, int, Any], dict[str, Any]],
    run_id: str | None,
) -> FileOutcome:
    """Validate, load and file away one dropped export; never half-loads it.

    `validate(conn, name, data)` returns the parsed export or raises an error with a `report()`
    (the reason file's text); `load(conn, name, sha256, size, export)` writes its rows in the
    caller's transaction and returns the ledger row's columns besides the common ones (at least
    `records` and `file_format`). The ledger row is written in the same transaction."""
    from ml.gaming.exports import ExportInvalid
    from orchestration.warehouse import append_rows

    try:
        # (The sensor may file a duplicate away between a check and the read: read, then judge.)
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return FileOutcome(path.name, "gone", detail="no longer in the inbox (processed by another run?)")
    sha256 = hashlib.sha256(data).hexdigest()
    export, problem = None, None
    with warehouse.tenant_transaction(tenant_id) as conn:
        loaded = ledger_entry(conn, ledger_table, tenant_id, sha256)
        if loaded is None:
            try:
                export = validate(conn, path.name, data)
            except ExportInvalid as exc:
                problem = exc
    if loaded is not None:
        return _archive_known(drops, tenant_id, kind, path, sha256, loaded)
    if problem is not None:
        target = drops.quarantine(path, tenant_id, kind, sha256, problem.report())
        return FileOutcome(path.name, "rejected", detail=str(problem), moved_to=str(target))
    with warehouse.tenant_transaction(tenant_id) as conn:
        # Loads of one tenant run one at a time: a file is checked against what was loaded
        # before it, and two runs given identical content must not both load it.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{ledger_table}:{tenant_id}",))
        loaded = ledger_entry(conn, ledger_table, tenant_id, sha256)
        if loaded is None:
            extra = load(conn, path.name, sha256, len(data), export)
            row = {"sha256": sha256, "kind": kind, "file_name": path.name, "size_bytes": len(data)}
            append_rows(conn, tenant_id, ledger_table, [{**row, **extra, "dagster_run_id": run_id}])
    if loaded is not None:  # another run loaded the same content meanwhile
        return _archive_known(drops, tenant_id, kind, path, sha256, loaded)
    # Moved only now, after the commit: a crash before this line leaves the file in the inbox,
    # and the next run finds it in the ledger instead of loading it again.
    target = drops.archive(path, tenant_id, kind, sha256)
    return FileOutcome(
        path.name, "loaded", extra["records"], extra.get("entries", 0), moved_to=_where(target)
    )


def _archive_known(drops, tenant_id, kind, path: Path, sha256: str, loaded) -> FileOutcome:
    file_name, loaded_at, run_id = loaded
    if file_name == path.name:
        # The load committed but its run stopped before moving the file: just file it away.
        target = drops.archive(path, tenant_id, kind, sha256)
        return FileOutcome(
            path.name,
            "loaded_before",
            detail=f"loaded at {loaded_at:%Y-%m-%d %H:%M} UTC",
            moved_to=_where(target),
        )
    note = (
        f"{path.name} was not loaded: the same content (sha256 {sha256}) was loaded from "
        f"{file_name} at {loaded_at:%Y-%m-%d %H:%M:%S} UTC (run {run_id}).\n"
    )
    target = drops.archive(path, tenant_id, kind, sha256, note=note)
    return FileOutcome(path.name, "duplicate", detail=f"same content as {file_name}", moved_to=_where(target))


def _where(target: Path | None) -> str:
    return str(target) if target is not None else "filed away by another run"
