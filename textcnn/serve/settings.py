"""What ``textcnn serve`` can set (:class:`ServeSettings`) and the checks on it."""

import math
from dataclasses import dataclass

from ..backends import BACKENDS
from ..errors import TextCNNError


@dataclass
class ServeSettings:
    """What ``textcnn serve`` can set; every field has a safe default.

    Example
    -------
    >>> ServeSettings(port=8080, header_timeout_s=5).check().max_connections
    1000
    """

    host: str = "127.0.0.1"  # loopback: put a proxy or load balancer in front to expose it
    port: int = 8000  # 0 = any free port (printed at start-up)
    backend: str = "auto"  # backends.BACKENDS: auto = folded when the model folds, else torch
    max_batch_size: int = 64  # texts per forward pass; 1 turns micro-batching off
    max_wait_ms: float = 5.0  # longest a request waits for others to share its forward pass
    max_body_bytes: int = 1 << 20  # larger request bodies get 413
    max_texts: int = 256  # texts per request; more get 422
    # characters per text; longer get 422. None: the model's limit (textcnn.texts.char_limit:
    # 20,000 for max_length 256), which is also what predict and explain accept; lower only
    max_chars: int | None = None
    threads: int = 0  # intra-op threads of the forward pass (0 = the library's default)
    device: str = "cpu"  # where the forward pass runs: cpu | auto | cuda | cuda:N | mps
    graceful_timeout_s: float = 30.0  # on SIGTERM, how long in-flight requests may finish
    # slow clients (textcnn/serve/protocol.py): a request line and headers that take longer
    # than header_timeout_s get 408 and the connection closed; a body that takes longer than
    # body_timeout_s after them gets 408; an idle keep-alive connection closes after
    # keep_alive_s; past max_connections open connections, a new one gets 503 and is closed
    max_connections: int = 1000
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0

    def check(self) -> "ServeSettings":
        """These settings, once they are known to be usable.

        Raises
        ------
        TextCNNError
            Unknown backend, a port outside 0-65535, a limit below 1, a negative wait or thread
            count, or a timeout that is not a positive, finite number.
        """
        if self.backend not in BACKENDS:
            raise TextCNNError(f"--backend must be one of {', '.join(BACKENDS)}, "
                               f"got {self.backend!r}")
        if not 0 <= self.port <= 65535:
            raise TextCNNError(f"--port must be between 0 and 65535, got {self.port}")
        for name in ("max_batch_size", "max_body_bytes", "max_texts", "max_chars",
                     "max_connections"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise TextCNNError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.threads < 0:
            raise TextCNNError("max_wait_ms and threads must not be negative")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s", "graceful_timeout_s"):
            if not 0 < getattr(self, name) < math.inf:  # also refuses NaN
                raise TextCNNError(f"{name} must be a positive number of seconds, "
                                   f"got {getattr(self, name)}")
        return self
