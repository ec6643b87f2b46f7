"""The embedded server's liveness check, without starting a server."""

import os

from orchestration.postgres import _postmaster_info


def _fake_pgdata(tmp_path, pid: int):
    (tmp_path / "PG_VERSION").write_text("16\n")
    # postmaster.pid as Postgres writes it: pid, data folder, start time, port, socket dir, ...
    lines = [str(pid), str(tmp_path), "1795671981", "5432", str(tmp_path), "", "0 0", "ready"]
    (tmp_path / "postmaster.pid").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_a_stale_pid_file_whose_pid_now_belongs_to_another_program_is_not_a_running_server(tmp_path):
    # This test's own process is alive but is not Postgres, as after a reboot reuses the pid.
    assert _postmaster_info(_fake_pgdata(tmp_path, os.getpid())) is None


def test_no_data_folder_means_no_server(tmp_path):
    assert _postmaster_info(tmp_path) is None
