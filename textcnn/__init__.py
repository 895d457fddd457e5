"""textcnn: convolutional text classifiers you can train, serve and study on a laptop CPU.

The public API; everything else is reachable through these names or the ``textcnn`` command.

>>> import textcnn
>>> config = textcnn.load_config("configs/kim2014/sst2.yaml", ["train.epochs=1"])
>>> config.model.name, config.train.epochs
('textcnn', 1)
>>> clf = textcnn.load(model_dir)  # a folder written by textcnn.train / `textcnn train`
>>> [list(row) for row in clf.predict(["a gorgeous, witty film"])]
[['sentiment']]
"""

__version__ = "0.1.0"

from .classifier import ImageClassifier, TextClassifier  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .core import ConvBlock, ConvCore  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    DataError,
    ModelFolderError,
    OutputError,
    TextCNNError,
)
from .folder import load  # noqa: E402
from .models import DPCNN, ImageCNN, TextCNN  # noqa: E402
from .runs import cross_validate, evaluate_folder, train  # noqa: E402

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
