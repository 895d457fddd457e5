"""Peak memory and exit code of textcnn on inputs too big to test in the suite.

Each case writes its file under ``--work`` (default: a temporary folder; written in 1 MiB
blocks, deleted after the case), runs one ``textcnn`` command as a child process, and reads the
child's peak resident size: its ``VmHWM`` in ``/proc/<pid>/status``, read every 10 ms until it
exits (exec starts that count afresh, while ``ru_maxrss`` of a child started from a large
process, such as a test run, also holds the parent's pages), else ``os.wait4``'s ``ru_maxrss``
where there is no ``/proc``. The cases:

- ``train`` on a JSONL and on a CSV file whose second row holds one 64 MB (and one 1 GB) line,
  read into memory and streamed (``tasks.<name>.stream: true``);
- ``predict --file`` on a 2 GB file of one line;
- ``predict`` with a model folder whose ``tokenizer.json`` is 500 MB (a 25 M-word vocabulary
  beside weights of a few thousand rows).

A model folder for the predict cases is trained first on a tiny generated set (one epoch, one
thread). Every case should end with exit code 2 and one ``error:`` line, under 1 GB.

    python scripts/fault_probe.py                      # all cases
    python scripts/fault_probe.py --sizes-mb 64 --predict-mb 0 --tokenizer-mb 0   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BLOCK = 1 << 20


def run_case(command: list[str]) -> tuple[int, float, str]:
    """``(exit code, peak RSS in MB, last stderr line)`` of ``textcnn <command>``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "textcnn", *command], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        peak = None
        while True:
            peak = high_water_mb(proc.pid) or peak  # None once the child has exited
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").strip().splitlines()
    return proc.returncode, peak or usage.ru_maxrss / 1024, (lines[-1] if lines else "")


def high_water_mb(pid: int) -> float | None:
    """Process ``pid``'s peak resident size so far (``VmHWM``), in MB, or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def write_line_file(path: Path, megabytes: int, kind: str) -> None:
    """A training file whose second row's text is ``megabytes`` MB on one line."""
    head, tail = {"jsonl": (b'{"text": "fine", "label": 0}\n{"text": "', b'", "label": 1}\n'),
                  "csv": (b"text,label\nfine,0\n", b",1\n"),
                  "txt": (b"", b"\n")}[kind]
    block = b"word " * (BLOCK // 5)
    with open(path, "wb") as fh:
        fh.write(head)
        for _ in range(megabytes * BLOCK // len(block)):
            fh.write(block)
        fh.write(tail)


def write_tokenizer(path: Path, megabytes: int) -> None:
    """A word-level tokenizer.json padded to ``megabytes`` MB with vocabulary entries."""
    data = json.loads(path.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    with open(path, "w", encoding="utf-8") as fh:
        head = json.dumps({**data, "model": {**data["model"], "vocab": {}}})
        before, after = head.split('"vocab": {}', 1)
        fh.write(before + '"vocab": {')
        fh.write(", ".join(f"{json.dumps(k)}: {v}" for k, v in vocab.items()))
        n = len(vocab)
        while fh.tell() < megabytes * BLOCK:
            fh.write("".join(f', "x{i}": {i}' for i in range(n, n + 50_000)))
            n += 50_000
        fh.write("}" + after)


def stream_folder(folder: Path, megabytes: int, kind: str) -> None:
    """A dataset folder (``train.<kind>`` with the long line, a small validation file) and a
    config that streams it."""
    folder.mkdir()
    write_line_file(folder / f"train.{kind}", megabytes, kind)
    (folder / "validation.jsonl").write_text('{"text": "fine", "label": 0}\n'
                                             '{"text": "dull", "label": 1}\n')
    (folder / "stream.yaml").write_text(json.dumps({  # JSON is YAML
        "tasks": {"label": {"dataset": str(folder), "stream": True}},
        "tokenizer": {"kind": "word", "sample": 100},
        "model": {"embedding_dim": 16, "kernel_sizes": [3], "channels": 8},
        "train": {"epochs": 1, "threads": 1}}))


def train_model(work: Path) -> Path:
    """A tiny model folder trained on generated sentences."""
    rows = [{"text": f"{w} film {i % 7}", "label": int(w == "good")}
            for i in range(400) for w in ("good", "bad")]
    data = work / "tiny.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = work / "tiny.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "tasks": {"label": {"dataset": str(data)}}, "tokenizer": {"kind": "word"},
        "model": {"embedding_dim": 16, "kernel_sizes": [3], "channels": 8},
        "train": {"epochs": 1, "threads": 1, "optimizer": "adamw", "lr": 0.01}}))
    out = work / "model"
    code, _, last = run_case(["train", str(config), "--output", str(out)])
    if code != 0:
        raise SystemExit(f"training the probe's model failed: {last}")
    return out


def cases(args, work: Path):
    """``(name, make the input, command)`` per case."""
    for mb in args.sizes_mb:
        for kind in ("jsonl", "csv"):
            path = work / f"train-{mb}mb.{kind}"
            yield (f"train, {mb} MB line, {kind.upper()}",
                   lambda p=path, m=mb, k=kind: write_line_file(p, m, k),
                   ["train", "--dataset", str(path), "--output", str(work / "out"),
                    "--set", "train.threads=1"], [path])
            folder = work / f"stream-{mb}mb-{kind}"
            yield (f"streamed train, {mb} MB line, {kind.upper()}",
                   lambda f=folder, m=mb, k=kind: stream_folder(f, m, k),
                   ["train", str(folder / "stream.yaml"), "--output", str(work / "out")],
                   [folder])
    model = None
    if args.predict_mb or args.tokenizer_mb:
        model = train_model(work)
    if args.predict_mb:
        path = work / "one-line.txt"
        yield (f"predict --file, {args.predict_mb} MB one line",
               lambda: write_line_file(path, args.predict_mb, "txt"),
               ["predict", str(model), "--file", str(path)], [path])
    if args.tokenizer_mb:
        big = work / "big-tokenizer"
        yield (f"predict, {args.tokenizer_mb} MB tokenizer.json",
               lambda: (shutil.copytree(model, big),
                        write_tokenizer(big / "tokenizer.json", args.tokenizer_mb)),
               ["predict", str(big), "a good film"], [big])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=int, nargs="*", default=[64, 1024],
                        help="line sizes of the training-file cases (default: 64 1024)")
    parser.add_argument("--predict-mb", type=int, default=2048,
                        help="size of the one-line predict --file case (0: skip)")
    parser.add_argument("--tokenizer-mb", type=int, default=500,
                        help="size of the tokenizer.json case (0: skip)")
    parser.add_argument("--work", help="folder for the big files (default: a temporary one)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fault-probe-", dir=args.work))
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPU cores")
    print("| case | exit code | peak RSS (MB) | last stderr line |")
    print("|---|---|---|---|")
    try:
        for name, make, command, made in cases(args, work):
            make()
            code, peak, last = run_case(command)
            for path in made:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            print(f"| {name} | {code} | {peak:.0f} | {last[:160].replace('|', '/')} |",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
