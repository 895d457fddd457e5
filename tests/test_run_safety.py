"""A run and its output folder under faults: SIGTERM mid-run, a second run into a held folder,
temp files left by killed writes, the mode of what a run writes.

One real ``textcnn train`` process is signalled (the exit code of a process is the point); the
rest runs in-process through ``textcnn.cli.main``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import tiny_config
from textcnn.cli import main
from textcnn.errors import OutputError
from textcnn.fileio import atomic_write, remove_orphans, write_text
from textcnn.outputs import LOCK, claim

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A run of many short epochs (no early stop) on a small two-class file."""
    import yaml

    rows = [{"text": f"{w} film number {i}", "label": int(w == "great")}
            for i in range(100) for w in ("great", "awful")]
    (tmp_path / "toy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path / "toy.jsonl", epochs=40, patience=40)))
    return path


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_says_how_to_resume_and_the_resumed_run_leaves_no_temp_files(
        config, tmp_path, capsys, umask_022):
    out = tmp_path / "run"
    argv = ["train", str(config), "--output", str(out)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "textcnn.cli", *argv], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(out / "checkpoint.safetensors", proc)  # epoch 1 is saved
        # while it runs, a second train into its folder is refused
        assert main(argv) == 2
        held = capsys.readouterr().err
        assert f"output folder {out} is in use by another run (pid {proc.pid})" in held
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM); epoch " in err and f"is saved in {out}: resume with" in err
    assert err.strip().endswith(f"textcnn train {config} --output {out} --resume")
    assert "Traceback" not in err and not (out / LOCK).exists()
    # what kill -9 leaves behind in the middle of atomic writes
    orphans = [out / ".checkpoint.safetensors.a1b2c3d4.tmp", out / ".config.json.zz_9k3l0.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"\0" * 1000)
    assert main([*argv, "--set", "train.epochs=1", "--resume"]) == 2  # another config: refused
    assert main([*argv, "--resume"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"] == 0o644, modes
    assert set(modes.values()) == {0o644}


def test_a_lock_left_by_a_dead_run_is_taken_over(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK).write_text(f"{dead.pid}\n")
    with claim(tmp_path) as folder:
        assert (folder / LOCK).read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / LOCK).exists()


def test_a_held_folder_names_the_holder(tmp_path):
    with claim(tmp_path), pytest.raises(OutputError, match=f"pid {os.getpid()}"), \
            claim(tmp_path):
        pass
    with claim(tmp_path):  # released however the block ended
        pass


def test_a_failed_run_leaves_no_folder_it_made_and_keeps_what_was_there(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(RuntimeError), claim(runs / "new"):
        raise RuntimeError("the data could not be read")
    assert not runs.exists()  # neither the run's folder nor the runs/ it made
    (runs / "mine").mkdir(parents=True)  # a folder the user made: theirs, even empty
    with pytest.raises(RuntimeError), claim(runs / "mine"):
        raise RuntimeError
    assert (runs / "mine").is_dir() and not list((runs / "mine").iterdir())
    with pytest.raises(RuntimeError), claim(runs / "resumable") as folder:
        (folder / "checkpoint.safetensors").write_bytes(b"epoch 1")
        raise RuntimeError("killed in epoch 2")
    assert (runs / "resumable" / "checkpoint.safetensors").read_bytes() == b"epoch 1"
    with claim(runs / "empty"):  # even a run that ends well but wrote nothing
        pass
    assert not (runs / "empty").exists()


def test_only_temp_files_of_atomic_writes_are_swept(tmp_path):
    keep = [".hidden", "model.safetensors", ".config.json.tmp", ".x.123.tmp", "a.b.abcdefgh.tmp",
            ".tmp", ".tmpab12", ".tmpabc1234", "tmpAbC123"]
    # the temp files of earlier versions' writes, and a safetensors write's own temp file
    sweep = [".model.safetensors.0a1b2c3d.tmp", ".history.jsonl.k_9dx2lm.tmp", ".tmpsKaQCt"]
    for name in keep + sweep:
        (tmp_path / name).write_text("x")
    # a write's own folder, with what a writer left in it
    (tmp_path / ".checkpoint.safetensors.9f8e7d6c.tmp").mkdir()
    for name in ("checkpoint.safetensors", ".tmpQ1w2E3"):
        (tmp_path / ".checkpoint.safetensors.9f8e7d6c.tmp" / name).write_text("x")
    (tmp_path / "kept.a1b2c3d4.tmp").mkdir()  # a user's folder of that shape, not hidden
    sweep.append(".checkpoint.safetensors.9f8e7d6c.tmp")
    assert sorted(p.name for p in remove_orphans(tmp_path)) == sorted(sweep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, "kept.a1b2c3d4.tmp"])


KILLED_MID_WRITE = """
import os, signal, sys
from pathlib import Path
from textcnn.fileio import atomic_write

def write(tmp):
    Path(tmp).write_bytes(b"half a checkpoint")
    # a writer's own temp file beside the path it was given (safetensors' is .tmpXXXXXX)
    (Path(tmp).parent / ".tmpAbC123").write_bytes(b"x" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)

atomic_write(Path(sys.argv[1]) / "checkpoint.safetensors", write)
"""

WRITES_FOREVER = """
import sys, torch
from pathlib import Path
from safetensors.torch import save_file
from textcnn.fileio import atomic_write

state = {"w": torch.zeros(16 << 20)}  # 64 MB: each write takes a while
while True:
    atomic_write(Path(sys.argv[1]) / "checkpoint.safetensors", lambda tmp: save_file(state, tmp))
"""


def _python(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                            stderr=subprocess.PIPE, text=True)


def test_a_write_killed_midway_leaves_nothing_the_next_run_keeps(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    proc = _python(KILLED_MID_WRITE, str(tmp_path))
    assert proc.wait(timeout=300) == -signal.SIGKILL, proc.stderr.read()
    assert any(p.name.startswith(".") for p in tmp_path.iterdir())  # the write left its temps
    with claim(tmp_path):  # what a run (or --resume) does as it takes the folder
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK, "metrics.json"]


def _safetensors_temp(folder: Path) -> Path | None:
    """The temp file safetensors writes (``.tmpXXXXXX``), wherever it is under ``folder``."""
    return next((p for p in folder.rglob(".tmp*") if len(p.name) == 10), None)


def test_a_checkpoint_write_killed_by_sigkill_is_swept(tmp_path):
    proc = _python(WRITES_FOREVER, str(tmp_path))
    try:
        while _safetensors_temp(tmp_path) is None:  # until safetensors is inside a write
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.002)  # (a write of 64 MB takes longer: one is caught in the act)
        proc.kill()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    remove_orphans(tmp_path)
    assert _safetensors_temp(tmp_path) is None
    assert [p.name for p in tmp_path.iterdir()] in ([], ["checkpoint.safetensors"])
    if (tmp_path / "checkpoint.safetensors").exists():  # a write that ended is whole
        assert load_file(str(tmp_path / "checkpoint.safetensors"))["w"].shape == (16 << 20,)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_are_written_with_the_umask_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "w.safetensors",
                     lambda tmp: save_file({"w": torch.zeros(2)}, tmp))
        write_text(tmp_path / "c.json", "{}")
    finally:
        os.umask(old)
    assert {p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {mode}


def test_a_failed_write_is_one_error_naming_the_file(tmp_path):
    def full(tmp):
        Path(tmp).write_bytes(b"partial")
        raise Exception("Error while serializing: I/O error: No space left on device "
                        "(os error 28)")  # what safetensors raises
    with pytest.raises(OutputError, match=r"cannot write .*w.safetensors: No space left"):
        atomic_write(tmp_path / "w.safetensors", full)
    assert list(tmp_path.iterdir()) == []  # the temp file went too
