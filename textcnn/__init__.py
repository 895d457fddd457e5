"""textcnn: convolutional text classifiers you can train, serve and study on a laptop CPU.

>>> import textcnn
>>> config = textcnn.load_config("configs/sst2.yaml")
>>> clf = textcnn.train(config, output="runs/sst2")  # doctest: +SKIP
>>> clf.predict(["a gorgeous, witty film"])  # doctest: +SKIP
[{'sentiment': [{'label': 'positive', 'score': 0.97}]}]
"""

__version__ = "0.1.0"

from .config import Config, load_config  # noqa: E402
from .core import ConvBlock, ConvCore  # noqa: E402
from .errors import ConfigError, DataError, ModelFolderError, TextCNNError  # noqa: E402
from .experiment import cross_validate, train  # noqa: E402
from .images import ImageClassifier, load_image_model  # noqa: E402
from .models import DPCNN, ImageCNN, TextCNN  # noqa: E402
from .pipeline import TextClassifier  # noqa: E402

__all__ = [
    "Config", "ConfigError", "ConvBlock", "ConvCore", "DPCNN", "DataError", "ImageCNN",
    "ImageClassifier", "ModelFolderError", "TextCNN", "TextCNNError", "TextClassifier",
    "cross_validate", "load_config", "load_image_model", "train",
]
