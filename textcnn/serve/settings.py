"""What ``textcnn serve`` can set (:class:`ServeSettings`) and the checks on it."""

from dataclasses import dataclass

from ..backends import BACKENDS
from ..errors import TextCNNError


@dataclass
class ServeSettings:
    """What ``textcnn serve`` can set; every field has a safe default."""

    host: str = "127.0.0.1"  # loopback: put a proxy or load balancer in front to expose it
    port: int = 8000
    backend: str = "auto"  # backends.BACKENDS: auto = folded when the model folds, else torch
    max_batch_size: int = 64  # texts per forward pass; 1 turns micro-batching off
    max_wait_ms: float = 5.0  # longest a request waits for others to share its forward pass
    max_body_bytes: int = 1 << 20  # larger request bodies get 413
    max_texts: int = 256  # texts per request; more get 422
    max_chars: int = 20_000  # characters per text; longer get 422
    threads: int = 0  # intra-op threads of the forward pass (0 = the library's default)
    device: str = "cpu"  # where the forward pass runs: cpu | auto | cuda | cuda:N | mps
    graceful_timeout_s: float = 30.0  # on SIGTERM, how long in-flight requests may finish

    def check(self) -> "ServeSettings":
        """These settings, once they are known to be usable.

        Raises
        ------
        TextCNNError
            Unknown backend, a limit below 1, or a negative wait or thread count.
        """
        if self.backend not in BACKENDS:
            raise TextCNNError(f"--backend must be one of {', '.join(BACKENDS)}, "
                               f"got {self.backend!r}")
        for name in ("max_batch_size", "max_body_bytes", "max_texts", "max_chars"):
            if getattr(self, name) < 1:
                raise TextCNNError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.threads < 0:
            raise TextCNNError("max_wait_ms and threads must not be negative")
        return self
