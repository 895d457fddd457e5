"""The backend interface and the plain torch backend."""

from __future__ import annotations

import numpy as np
from torch import nn

from ..errors import TextCNNError
from ..inference import predict_logits


class BackendError(TextCNNError, TypeError):
    """A backend name is unknown or does not fit the model."""


class Backend:
    """Runs a model's forward pass over prepared inputs.

    Subclasses set :attr:`name` and either :attr:`module` (a torch module taking the model's
    inputs, run in length-sorted batches) or override :meth:`logits`.

    Parameters
    ----------
    model : torch.nn.Module
        The trained network; ``self.model`` always keeps it (for export and explanation).
    """

    name = "torch"

    def __init__(self, model: nn.Module):
        self.model = model
        self.module: nn.Module = model

    def logits(self, data, batch_size: int) -> dict[str, np.ndarray]:
        """``{head: logits (n, classes)}`` in input order.

        ``data`` has ``len()``, ``lengths`` and ``batch(idx, min_len)`` (an ``Encoded`` split of
        token ids, or an ``ImageSplit``).
        """
        return predict_logits(self.module, data, batch_size)


class TorchBackend(Backend):
    """The trained network itself, under ``torch.inference_mode``.

    Examples
    --------
    >>> import numpy as np
    >>> from textcnn.models import TextCNN
    >>> from textcnn.training import Encoded
    >>> model = TextCNN(20, {"topic": 3}, embedding_dim=4, channels=2).eval()
    >>> data = Encoded(np.array([[5, 6, 7]], dtype=np.int32), np.array([3]))
    >>> TorchBackend(model).logits(data, batch_size=8)["topic"].shape
    (1, 3)
    """
