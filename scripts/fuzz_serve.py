"""Schema-driven fuzzing of `textcnn serve` with Schemathesis.

Starts `textcnn serve MODEL` on 127.0.0.1 (a free port), points `st run` at the server's own
/openapi.json with every check (no 5xx, responses match the documented schemas, status codes and
content types; invalid data rejected with 4xx, valid data accepted), then counts the requests in
the server's access log. Exits non-zero when Schemathesis reports a failure, when any request got
a 5xx, or when fewer than --min-requests requests were made.

    pip install 'textcnn[dev,serve]'
    python scripts/fuzz_serve.py /tmp/sst2-model
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# 413 (body over max_body_bytes) is a documented rejection that JSON Schema cannot express:
# a schema-valid body of 256 texts x 20,000 characters is 5 MB. Otherwise Schemathesis' defaults.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", 401, 403, 404, 409, 413, 429, "5xx"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("error: the server exited before it was ready")
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    sys.exit("error: the server did not become ready")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model folder")
    ap.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    ap.add_argument("--max-examples", type=int, default=500,
                    help="Hypothesis examples per operation and phase (default 500)")
    ap.add_argument("--min-requests", type=int, default=500)
    ap.add_argument("--timeout", type=int, default=600, help="seconds for the whole run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-log", help="copy the server's access log here")
    args = ap.parse_args(argv)

    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    if not Path(st).exists():
        sys.exit("error: schemathesis is not installed (pip install 'textcnn[dev]')")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="fuzz-serve-") as tmp:
        log_path = Path(tmp) / "server.log"
        with open(log_path, "w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "textcnn.cli", "serve", args.model, "--host", "127.0.0.1",
                 "--port", str(port), "--backend", args.backend, "--threads", "1"],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            try:
                wait_ready(url, server)
                config = Path(tmp) / "schemathesis.toml"
                config.write_text(CONFIG, encoding="utf-8")
                cmd = [st, "--config-file", str(config), "run", f"{url}/openapi.json",
                       "--checks", "all", "--max-examples", str(args.max_examples),
                       "--seed", str(args.seed), "--workers", "1", "--continue-on-failure",
                       "--suppress-health-check", "too_slow"]
                print("$", " ".join(cmd), flush=True)
                env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
                fuzz = subprocess.run(cmd, cwd=tmp, env=env, timeout=args.timeout, check=False)
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
        rows = []
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    rows.append(json.loads(line))
        if args.keep_log:
            shutil.copy(log_path, args.keep_log)
    statuses = Counter(r["status"] for r in rows)
    per_path = Counter(f"{r['method']} {r['path']}" for r in rows)
    server_errors = sum(n for s, n in statuses.items() if s >= 500)
    summary = {"requests": len(rows), "statuses": dict(sorted(statuses.items())),
               "per_path": dict(per_path.most_common(8)), "server_errors": server_errors,
               "schemathesis_exit": fuzz.returncode}
    print(json.dumps(summary, indent=2))
    ok = fuzz.returncode == 0 and server_errors == 0 and len(rows) >= args.min_requests
    print("fuzz: OK" if ok else "fuzz: FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
