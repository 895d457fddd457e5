"""textcnn: convolutional text classifiers you can train, serve and study on a laptop CPU.

The public API; everything else is reachable through these names or the ``textcnn`` command.
This module is also the composition root: after the core is imported it registers the shipped
parts outside the core (:mod:`textcnn.contrib`: distillation, the studies) with the core's
hooks, the one place the core and the research edge meet.

>>> import textcnn
>>> config = textcnn.load_config("configs/kim2014/sst2.yaml", ["train.epochs=1"])
>>> config.model.name, config.train.epochs
('textcnn', 1)
>>> clf = textcnn.load(model_dir)  # a folder written by textcnn.train / `textcnn train`
>>> [list(row) for row in clf.predict(["a gorgeous, witty film"])]
[['sentiment']]
"""

from ._version import __version__ as __version__  # re-exported
from .classifier import ImageClassifier, TextClassifier, load
from .config import Config, load_config
from .contrib import install as _install_contrib  # noqa: E402 (after the core it plugs into)
from .core import ConvBlock, ConvCore
from .errors import (
    ConfigError,
    DataError,
    ModelFolderError,
    OutputError,
    TextCNNError,
)
from .models import DPCNN, ImageCNN, TextCNN
from .runs import cross_validate, evaluate_folder, train

_install_contrib()

__all__ = [
    "DPCNN", "Config", "ConfigError", "ConvBlock", "ConvCore", "DataError", "ImageCNN",
    "ImageClassifier", "ModelFolderError", "OutputError", "TextCNN", "TextCNNClassifier",
    "TextCNNError", "TextClassifier", "cross_validate", "evaluate_folder", "load", "load_config",
    "train",
]


def __getattr__(name: str):
    # the scikit-learn estimator is imported on first use: `import textcnn` stays light
    if name == "TextCNNClassifier":
        from .estimator import TextCNNClassifier

        return TextCNNClassifier
    raise AttributeError(f"module 'textcnn' has no attribute {name!r}")
