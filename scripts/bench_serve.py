"""Serving benchmark: HTTP load on `textcnn serve`, and in-process prediction speed.

HTTP part: starts `textcnn serve` as a separate process on 127.0.0.1 (loopback only) and drives
it from a second process with concurrent asyncio clients (keep-alive HTTP/1.1 on asyncio
streams, or httpx with --client httpx), each sending single-text requests back to back. Every
scenario is bounded by --seconds AND --max-requests. Reported: throughput, p50/p99 latency and
failures at each --concurrency, for each --backends, plus the same server with
--max-batch-size 1 (no micro-batching) at the highest concurrency (first backend only), and the
mean forward batch size from the server's access log.

In-process part: raw strings -> probabilities (``predict_proba``) in sentences/s; the forward
pass alone on pre-tokenised, length-sorted batches, with its convolution GFLOP/s next to a
measured fp32 ``torch.mm`` of the conv's GEMM shape (same threads); the same in bf16 autocast
(with its max |p - p_fp32|), in onnxruntime and in the folded backend (convolutions precomputed
into the embedding table, textcnn/folded.py), each with its max |p - p_torch|.

Texts: SST-2 validation + test from $TEXTCNN_DATA_DIR (or --texts FILE, one per line).

    textcnn train configs/kim2014/sst2.yaml --output /tmp/sst2-model --set train.epochs=2
    python scripts/bench_serve.py /tmp/sst2-model --threads 2 --output bench_serve.json
    python scripts/bench_serve.py /tmp/sst2-model --concurrency 64 --seconds 30 --skip-inprocess

Output: a markdown table on stdout; everything as JSON with --output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# -- texts -------------------------------------------------------------------------------------
def load_texts(path: str | None) -> list[str]:
    if path:
        return [line.rstrip("\n") for line in open(path, encoding="utf-8") if line.strip()]
    data = os.environ.get("TEXTCNN_DATA_DIR")
    if not data:
        sys.exit("error: set TEXTCNN_DATA_DIR (SST-2 texts) or pass --texts FILE")
    texts = []
    for split in ("validation", "test"):
        with open(Path(data) / "sst2" / f"{split}.jsonl", encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh if line.strip()]
    return texts


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values)) - 1))]


# -- the load client (runs in its own process) -------------------------------------------------
class RawHTTP:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, for one connection.

    httpx costs about 3-6 ms of client CPU per request here (its pool is slow with many
    connections), more than the server spends, so with it the benchmark would time the client;
    this one costs ~0.2 ms. ``--client httpx`` uses httpx instead.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host.encode(),
                                                           len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length, close = int(head[9:12]), None, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise ValueError("response without content-length")
        payload = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def drive(url: str, concurrency: int, seconds: float, max_requests: int,
                texts: list[str], impl: str = "raw") -> dict:
    from urllib.parse import urlsplit

    bodies = [json.dumps({"texts": [t]}).encode() for t in texts]
    latencies: list[float] = []
    codes: dict[str, int] = {}
    issued = 0
    if impl == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        shared = httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0)

        def connect():
            async def post(path, body):
                r = await shared.post(path, content=body,
                                      headers={"content-type": "application/json"})
                return r.status_code, r.content
            return post
    else:
        parts = urlsplit(url)
        shared = None

        def connect():
            return RawHTTP(parts.hostname, parts.port).post

    async def one(post, body: bytes) -> tuple[bool, str]:
        try:
            status, payload = await asyncio.wait_for(post("/v1/classify", body), 30.0)
            ok = status == 200 and len(json.loads(payload)["predictions"]) == 1
            return ok, str(status) if ok or status != 200 else "bad_body"
        except Exception as exc:  # noqa: BLE001 - a failure to count, not to raise
            return False, type(exc).__name__

    posts = [connect() for _ in range(concurrency)]
    await asyncio.gather(*(one(p, bodies[i % len(bodies)]) for i, p in enumerate(posts)))  # warm
    deadline = time.perf_counter() + seconds

    async def worker(post) -> None:
        nonlocal issued
        while issued < max_requests and time.perf_counter() < deadline:
            body = bodies[issued % len(bodies)]
            issued += 1
            t0 = time.perf_counter()
            ok, key = await one(post, body)
            codes[key] = codes.get(key, 0) + 1
            if ok:
                latencies.append((time.perf_counter() - t0) * 1000)
            elif impl == "raw":
                post.__self__.close()  # a fresh connection after any failure

    start = time.perf_counter()
    await asyncio.gather(*(worker(p) for p in posts))
    elapsed = time.perf_counter() - start
    if shared is not None:
        await shared.aclose()
    return {"concurrency": concurrency, "client": impl, "seconds": round(elapsed, 2),
            "requests": issued, "ok": len(latencies), "failed": issued - len(latencies),
            "codes": codes, "throughput_rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2)}


def client_main(args) -> None:
    texts = load_texts(args.texts_file)
    result = asyncio.run(drive(args.client_url, args.concurrency[0], args.seconds,
                               args.max_requests, texts, args.client))
    print(json.dumps(result))


# -- the server (a separate process) -----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`textcnn serve` in a subprocess on 127.0.0.1; its stderr (access log) goes to a file."""

    def __init__(self, model: str, backend: str, max_batch_size: int, threads: int,
                 max_wait_ms: float, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{backend}-b{max_batch_size}-{self.port}.log"
        cmd = [sys.executable, "-m", "textcnn.cli", "serve", model, "--host", "127.0.0.1",
               "--port", str(self.port), "--backend", backend,
               "--max-batch-size", str(max_batch_size), "--max-wait-ms", str(max_wait_ms),
               "--threads", str(threads)]
        self.log = open(self.log_path, "w")  # noqa: SIM115 - open while the server runs
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_ready(self, timeout: float = 90.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("server did not become ready")

    def log_offset(self) -> int:
        self.log.flush()
        return self.log_path.stat().st_size

    def batch_sizes(self, offset: int) -> list[int]:
        sizes = []
        with open(self.log_path, encoding="utf-8") as fh:
            fh.seek(offset)
            for line in fh:
                if line.startswith("{"):
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if row.get("path") == "/v1/classify" and row.get("batch_size"):
                        sizes.append(row["batch_size"])
        return sizes

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def run_client(url: str, concurrency: int, seconds: float, max_requests: int,
               texts_file: str, impl: str) -> dict:
    cmd = [sys.executable, __file__, "--client-url", url, "--concurrency", str(concurrency),
           "--seconds", str(seconds), "--max-requests", str(max_requests),
           "--texts", texts_file, "--client", impl]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"client failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def http_bench(args, texts_file: str, workdir: Path) -> list[dict]:
    rows = []
    top = max(args.concurrency)
    plans = [(b, args.max_batch_size, args.concurrency) for b in args.backends]
    if not args.no_batch1 and args.max_batch_size != 1:
        plans.append((args.backends[0], 1, [top]))
    for backend, mbs, levels in plans:
        server = Server(args.model, backend, mbs, args.server_threads, args.max_wait_ms, workdir)
        try:
            server.wait_ready()
            for c in levels:
                offset = server.log_offset()
                row = run_client(server.url, c, args.seconds, args.max_requests, texts_file,
                                 args.client)
                time.sleep(0.2)
                sizes = server.batch_sizes(offset)
                row.update(backend=backend, max_batch_size=mbs,
                           mean_batch=round(statistics.fmean(sizes), 1) if sizes else None)
                rows.append(row)
                print(f"  {backend:5s} max_batch {mbs:3d} c={c:3d}: {row['throughput_rps']:7.1f} "
                      f"req/s  p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:6.1f} ms  "
                      f"failed {row['failed']}  mean batch {row['mean_batch']}",
                      file=sys.stderr, flush=True)
        finally:
            server.stop()
    return rows


# -- in-process ----------------------------------------------------------------------------------
def timed(fn, min_seconds: float, min_rounds: int = 3) -> float:
    """Median seconds per call over at least ``min_rounds`` calls and ``min_seconds``."""
    fn()  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < min_rounds or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def inprocess_bench(args, texts: list[str]) -> dict:
    import numpy as np
    import torch

    from textcnn.classifier import TextClassifier, load, softmax
    from textcnn.inference import predict_logits
    from textcnn.threads import set_threads
    from textcnn.training import Encoded, sorted_batches, to_tensors

    threads = set_threads(args.threads).count
    clf = TextClassifier.from_pretrained(args.model, backend="torch")
    model = clf.model.eval()
    ks = list(clf.model.core.kernel_sizes)
    c_in = clf.config.model.embedding_dim
    c_out = clf.config.model.channels
    widest = max(ks)
    ids, lengths = clf.encode(texts)
    bs = clf.config.train.eval_batch_size
    batches = [to_tensors(ids, lengths, idx) for idx in sorted_batches(lengths, bs)]
    executed = useful = 0  # conv FLOPs on the padded batches / on the texts' own windows
    for x, lens in batches:
        width = max(x.shape[1], widest)
        for k in ks:
            executed += 2 * len(lens) * (width - k + 1) * c_out * c_in * k
            useful += 2 * int(np.maximum(lens.numpy() - k + 1, 1).sum()) * c_out * c_in * k
    n = len(texts)
    out: dict = {"threads": threads, "torch": torch.__version__, "sentences": n,
                 "mean_tokens": round(float(lengths.mean()), 1), "eval_batch_size": bs,
                 "conv_gflop_per_pass": round(executed / 1e9, 3),
                 "useful_conv_gflop_per_pass": round(useful / 1e9, 3)}

    def forward(dtype=None, model=model):
        with torch.inference_mode():
            if dtype is None:
                for x, lens in batches:
                    model(x, lens)
            else:
                with torch.autocast("cpu", dtype=dtype):
                    for x, lens in batches:
                        model(x, lens)

    # GEMM of the conv's shape: (positions of a typical batch, c_in * k) x (c_in * k, c_out)
    mid = batches[len(batches) // 2]
    m = len(mid[1]) * max(mid[0].shape[1], widest)
    kk = c_in * ks[len(ks) // 2]
    a32, b32 = torch.randn(m, kk), torch.randn(kk, c_out)
    out["matmul_shape"] = [m, kk, c_out]
    for name, a, b in (("fp32", a32, b32), ("bf16", a32.bfloat16(), b32.bfloat16())):
        t = timed(lambda a=a, b=b: torch.mm(a, b), args.min_seconds / 2, 10)
        out[f"matmul_{name}_gflops"] = round(2 * m * kk * c_out / t / 1e9, 1)

    t = timed(lambda: clf.predict_proba(texts), args.min_seconds)
    out["torch_fp32_predict_sentences_per_s"] = round(n / t)
    t = timed(forward, args.min_seconds)
    out["torch_fp32_forward_sentences_per_s"] = round(n / t)
    out["torch_fp32_conv_gflops"] = round(executed / t / 1e9, 1)
    out["torch_fp32_useful_conv_gflops"] = round(useful / t / 1e9, 1)
    out["torch_fp32_conv_vs_matmul"] = round(out["torch_fp32_conv_gflops"]
                                             / out["matmul_fp32_gflops"], 3)

    ref = clf.predict_proba(texts)
    t = timed(lambda: forward(torch.bfloat16), args.min_seconds)
    out["torch_bf16_forward_sentences_per_s"] = round(n / t)
    out["torch_bf16_conv_gflops"] = round(executed / t / 1e9, 1)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = predict_logits(model, Encoded(ids, lengths), bs)
    out["torch_bf16_max_abs_diff"] = max(float(np.abs(softmax(logits[h]) - ref[h]).max())
                                         for h in ref)

    fold = TextClassifier.from_pretrained(args.model, backend="folded")
    t = timed(lambda: fold.predict_proba(texts), args.min_seconds)
    out["folded_predict_sentences_per_s"] = round(n / t)
    t = timed(lambda: forward(model=fold.engine.module), args.min_seconds)
    out["folded_forward_sentences_per_s"] = round(n / t)
    got = fold.predict_proba(texts)
    out["folded_max_abs_diff"] = max(float(np.abs(got[h] - ref[h]).max()) for h in ref)
    t = timed(lambda: clf.encode(texts), args.min_seconds)
    out["tokenize_sentences_per_s"] = round(n / t)

    try:
        onnx = load(args.model, backend="onnx", threads=threads)
    except ImportError as exc:  # no onnxruntime
        out["onnx_error"] = str(exc)
        return out
    t = timed(lambda: onnx.predict_proba(texts), args.min_seconds)
    out["onnx_predict_sentences_per_s"] = round(n / t)
    feeds = []
    for x, lens in batches:
        if x.shape[1] < widest:
            x = torch.nn.functional.pad(x, (0, widest - x.shape[1]))
        feeds.append({"ids": x.numpy(), "lengths": lens.numpy()})
    t = timed(lambda: [onnx.engine.session.run(None, f) for f in feeds], args.min_seconds)
    out["onnx_forward_sentences_per_s"] = round(n / t)
    out["onnx_conv_gflops"] = round(executed / t / 1e9, 1)
    got = onnx.predict_proba(texts)
    out["onnx_max_abs_diff"] = max(float(np.abs(got[h] - ref[h]).max()) for h in ref)
    return out


# -- report ------------------------------------------------------------------------------------
def report(result: dict) -> str:
    a = result["args"]
    lines = [(f"threads: in-process {a['threads']}, server {a['server_threads']}; "
              f"max_wait_ms {a['max_wait_ms']}; {a['seconds']} s or {a['max_requests']} "
              "requests per scenario")]
    if result.get("http"):
        lines += ["", ("| backend | max batch | concurrency | req/s | p50 ms | p99 ms | failed "
                       "| mean batch |"), "|---|---|---|---|---|---|---|---|"]
        for r in result["http"]:
            lines.append(f"| {r['backend']} | {r['max_batch_size']} | {r['concurrency']} | "
                         f"{r['throughput_rps']} | {r['p50_ms']} | {r['p99_ms']} | "
                         f"{r['failed']} | {r['mean_batch']} |")
        if result.get("batching_speedup"):
            lines.append(f"\nmicro-batching speed-up at concurrency "
                         f"{result['batching_speedup']['concurrency']}: "
                         f"{result['batching_speedup']['ratio']}x")
    ip = result.get("inprocess")
    if ip:
        lines += ["", (f"in-process: {ip['sentences']} SST-2 sentences (mean "
                       f"{ip['mean_tokens']} tokens), batches of {ip['eval_batch_size']}, "
                       f"{ip['threads']} threads, torch {ip['torch']}; conv "
                       f"{ip['conv_gflop_per_pass']} GFLOP per pass "
                       f"({ip['useful_conv_gflop_per_pass']} on the texts' own windows); "
                       f"matmul {ip['matmul_shape']}: fp32 {ip['matmul_fp32_gflops']} GFLOP/s, "
                       f"bf16 {ip['matmul_bf16_gflops']} GFLOP/s"), "",
                  ("| backend | strings -> probs sent/s | forward sent/s | conv GFLOP/s "
                   "| max abs diff |"), "|---|---|---|---|---|",
                  (f"| torch fp32 | {ip['torch_fp32_predict_sentences_per_s']} | "
                   f"{ip['torch_fp32_forward_sentences_per_s']} | {ip['torch_fp32_conv_gflops']} "
                   f"({ip['torch_fp32_conv_vs_matmul']:.0%} of matmul) | 0 |"),
                  (f"| torch bf16 autocast | - | {ip['torch_bf16_forward_sentences_per_s']} | "
                   f"{ip['torch_bf16_conv_gflops']} | {ip['torch_bf16_max_abs_diff']:.2e} |")]
        lines.append(f"| folded (default) | {ip['folded_predict_sentences_per_s']} | "
                     f"{ip['folded_forward_sentences_per_s']} | - | "
                     f"{ip['folded_max_abs_diff']:.2e} |")
        if "onnx_predict_sentences_per_s" in ip:
            lines.append(f"| onnxruntime | {ip['onnx_predict_sentences_per_s']} | "
                         f"{ip['onnx_forward_sentences_per_s']} | {ip['onnx_conv_gflops']} | "
                         f"{ip['onnx_max_abs_diff']:.2e} |")
        lines.append(f"\ntokenising alone: {ip['tokenize_sentences_per_s']} sentences/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", help="model folder (an SST-2 Kim CNN)")
    ap.add_argument("--threads", type=int, default=2, help="in-process threads (default 2)")
    ap.add_argument("--server-threads", type=int, default=1,
                    help="the server's forward-pass threads (default 1: the event loop and the "
                         "load client need the other core)")
    ap.add_argument("--backends", nargs="+", default=["folded", "torch", "onnx"],
                    choices=["folded", "torch", "onnx"],
                    help="server backends; the first also runs with --max-batch-size 1")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--seconds", type=float, default=10.0, help="per scenario (default 10)")
    ap.add_argument("--max-requests", type=int, default=200_000, help="per scenario")
    ap.add_argument("--max-batch-size", type=int, default=64)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--no-batch1", action="store_true",
                    help="skip the --max-batch-size 1 server")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-inprocess", action="store_true")
    ap.add_argument("--min-seconds", type=float, default=2.0,
                    help="in-process: time each measurement at least this long")
    ap.add_argument("--texts", dest="texts_file", help="texts, one per line (default: SST-2)")
    ap.add_argument("--output", help="write all results as JSON here")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw",
                    help="load client: asyncio streams (default, ~0.2 ms CPU a request) or "
                         "httpx (~3-6 ms a request here: it would time itself)")
    ap.add_argument("--client-url", help=argparse.SUPPRESS)  # internal: be the load client
    args = ap.parse_args(argv)
    if args.client_url:
        return client_main(args)
    if not args.model:
        ap.error("the model folder is required")
    texts = load_texts(args.texts_file)
    result: dict = {"args": {k: v for k, v in vars(args).items() if k != "client_url"},
                    "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        workdir = Path(tmp)
        texts_file = workdir / "texts.txt"
        texts_file.write_text("".join(t.replace("\n", " ") + "\n" for t in texts),
                              encoding="utf-8")
        if not args.skip_http:
            result["http"] = http_bench(args, str(texts_file), workdir)
            top = max(args.concurrency)
            rows = {(r["backend"], r["max_batch_size"], r["concurrency"]): r
                    for r in result["http"]}
            batched = rows.get((args.backends[0], args.max_batch_size, top))
            single = rows.get((args.backends[0], 1, top))
            if batched and single and single["throughput_rps"]:
                result["batching_speedup"] = {
                    "concurrency": top, "backend": args.backends[0],
                    "ratio": round(batched["throughput_rps"] / single["throughput_rps"], 2)}
    if not args.skip_inprocess:
        result["inprocess"] = inprocess_bench(args, texts)
    print(report(result))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
