"""The drop folder: which files are pending, in which order, and where they go afterwards."""

import os
import time
from types import SimpleNamespace

from orchestration.file_drops import DropFolderResource, file_sha256, is_candidate, seed_demo_drops
from orchestration.settings import PROJECT_ROOT


def touch(path, content="x", age_s=60.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_pending_files_are_finished_ones_in_arrival_order(tmp_path):
    drops = DropFolderResource(root=str(tmp_path), settle_s=10)
    inbox = drops.inbox("thrillring", "players")
    touch(inbox / "b.csv", age_s=300)
    touch(inbox / "a.csv", age_s=200)
    touch(inbox / "c.json", age_s=100)
    touch(inbox / "writing.csv", age_s=1)  # modified a second ago: still being written
    touch(inbox / ".hidden.csv")
    touch(inbox / "upload.csv.part")
    touch(inbox / "download.csv.crdownload")
    touch(inbox / "nested" / "deep.csv")
    assert [f.name for f in drops.pending("thrillring", "players")] == ["b.csv", "a.csv", "c.json"]
    assert drops.pending("thrillring", "tournaments") == []  # no inbox yet: nothing pending
    later = time.time() + 30
    assert "writing.csv" in [f.name for f in drops.pending("thrillring", "players", now=later)]
    assert not is_candidate("~lock.csv") and is_candidate("players.CSV")


def test_archive_and_quarantine_never_overwrite(tmp_path):
    drops = DropFolderResource(root=str(tmp_path))
    inbox = drops.inbox("thrillring", "tournaments")
    first = touch(inbox / "t.csv", "one")
    moved = drops.archive(first, "thrillring", "tournaments", file_sha256(first))
    second = touch(inbox / "t.csv", "two")
    sha = file_sha256(second)
    moved_again = drops.archive(second, "thrillring", "tournaments", sha, note="why")
    assert moved == tmp_path / "thrillring" / "processed" / "tournaments" / "t.csv"
    assert moved_again.name == f"t.{sha[:12]}.csv" and moved.read_text() == "one"
    assert (moved_again.parent / f"{moved_again.name}.note.txt").read_text() == "why"
    bad = touch(inbox / "bad.csv", "nope")
    target = drops.quarantine(bad, "thrillring", "tournaments", file_sha256(bad), "line 2: broken")
    assert target.parent.name == "tournaments" and target.parent.parent.name == "quarantine"
    assert (target.parent / "bad.csv.reason.txt").read_text() == "line 2: broken" and not bad.exists()


def test_demo_seed_copies_each_export_once_in_order(tmp_path):
    settings = SimpleNamespace(fixtures_dir=PROJECT_ROOT / "fixtures", drops_dir=tmp_path)
    copied = seed_demo_drops(settings)
    bundled = sorted(
        (p.parent.parent.name, p.parent.name, p.name)
        for p in (PROJECT_ROOT / "fixtures" / "drops").glob("*/*/*")
        if p.is_file()
    )
    assert sorted((p.parent.parent.name, p.parent.name, p.name) for p in copied) == bundled
    assert [name for tenant, _, name in bundled if tenant == "thrillring"] == [
        "players_2026-10-01.csv",
        "players_2026-11-24.json",
        "tournaments_2026-10.csv",
        "tournaments_2026-11.json",
    ]
    assert {kind for tenant, kind, _ in bundled if tenant != "thrillring"} == {
        "leads", "outcomes", "campaigns", "touches"
    }  # fmt: skip
    drops = DropFolderResource(root=str(tmp_path), settle_s=10)
    assert [f.name for f in drops.pending("thrillring", "players")] == [
        "players_2026-10-01.csv",
        "players_2026-11-24.json",
    ]  # pending at once, in file-name order, no partial copies left behind
    assert not [p for p in drops.inbox("thrillring", "players").iterdir() if p.name.startswith(".")]
    assert seed_demo_drops(settings) == []  # already waiting
    for f in drops.pending("thrillring", "players"):
        drops.archive(f.path, "thrillring", "players", file_sha256(f.path))
    assert seed_demo_drops(settings) == []  # already processed
    assert not (tmp_path / "thrillring" / "tournaments" / "tournaments_2026-11-22.csv").exists()


def test_archiving_a_file_another_run_filed_away_first_is_not_an_error(tmp_path):
    drops = DropFolderResource(root=str(tmp_path))
    dropped = touch(drops.inbox("coreldove", "leads") / "leads.csv", "x")
    sha = file_sha256(dropped)
    assert drops.archive(dropped, "coreldove", "leads", sha) is not None
    assert drops.archive(dropped, "coreldove", "leads", sha, note="late") is None
    assert [p.name for p in drops.folder("coreldove", "processed", "leads").iterdir()] == ["leads.csv"]
