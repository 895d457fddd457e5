"""The ``textcnn serve`` verb: its arguments (the HTTP service's limits and timeouts) and what it
runs; fastapi and uvicorn are imported only when it runs.

Example
-------
>>> from textcnn.cli import build_parser
>>> args = build_parser().parse_args(["serve", "runs/sst2", "--max-batch-size", "32"])
>>> args.verb, args.max_batch_size, args.backend
('serve', 32, 'auto')
"""

from __future__ import annotations

import argparse

from .backends import BACKENDS


def serve_arguments(sub) -> None:
    """Declare ``textcnn serve``'s arguments on the verbs' subparsers ``sub``."""
    from .cli import add_device, verb_parser

    p = verb_parser(sub, "serve", "serve a model folder over HTTP (POST /v1/classify, POST "
                                  "/v1/explain, GET /healthz, GET /v1/model, /openapi.json; "
                                  "GET / is a demo page)")
    p.add_argument("model_dir")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="how the forward pass runs: folded (convolutions precomputed into the "
                        "embedding table), torch, onnx (onnxruntime), or auto = folded when the "
                        "model folds, else torch (default: auto)")
    p.add_argument("--max-batch-size", type=int, default=64,
                   help="texts per forward pass; 1 turns micro-batching off (default: 64)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="longest a request waits for others to batch with (default: 5)")
    p.add_argument("--threads", type=int, default=0,
                   help="intra-op threads of the forward pass (default: 0 = one per core)")
    add_device(p, "cpu")
    p.add_argument("--max-texts", type=int, default=256, help="texts per request (422 beyond)")
    p.add_argument("--max-chars", type=int, default=None,
                   help="characters per text (422 beyond; default and most: the model's limit, "
                        "max(20000, 64 * tokenizer.max_length), what predict accepts)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20,
                   help="request body size (413 beyond; default: 1 MiB)")
    p.add_argument("--max-connections", type=int, default=1000,
                   help="open connections; past it a new one gets 503 and is closed "
                        "(default: 1000)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="a request line and headers slower than this get 408 and the "
                        "connection closed (default: 10)")
    p.add_argument("--body-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="a request body not received this long after its headers gets 408 "
                        "(default: 30)")
    p.add_argument("--keep-alive", type=float, default=5.0, metavar="SECONDS",
                   help="idle keep-alive connections close after this (default: 5)")
    p.add_argument("--graceful-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, how long in-flight requests may finish (default: 30)")


def serve_command(args: argparse.Namespace) -> None:
    """Run ``textcnn serve``: the parsed arguments as :class:`~textcnn.serve.ServeSettings`."""
    from .serve import ServeSettings, serve

    serve(args.model_dir, ServeSettings(
        host=args.host, port=args.port, backend=args.backend,
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
        threads=args.threads, device=args.device, max_texts=args.max_texts,
        max_chars=args.max_chars, max_body_bytes=args.max_body_bytes,
        max_connections=args.max_connections, header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout, keep_alive_s=args.keep_alive,
        graceful_timeout_s=args.graceful_timeout))
