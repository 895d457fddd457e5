"""Data: where a task's dataset is, how its files are read, how labels become class ids, how
it is cut into splits, and the batches a model is fed.

The package is cut along the path a row travels, each step in one module that every mode of
reading shares (a split read whole, a training split streamed from disk, ``textcnn evaluate``,
``textcnn predict --file``):

- :mod:`~textcnn.data.resolve` finds the data (a path, a name in the data dir, a glob of
  shards, the Hub) and is the one reader of a folder's ``dataset.json``;
- :mod:`~textcnn.data.formats` reads a split file's rows with one reader per format
  (:mod:`~textcnn.data.jsonl`, :mod:`~textcnn.data.delimited`, :mod:`~textcnn.data.parquet`;
  the Hub: :mod:`~textcnn.data.hub`), naming the file and line of a bad row;
- :mod:`~textcnn.data.labels` turns labels into class ids (:class:`LabelMap`, one function for
  every path);
- :mod:`~textcnn.data.dataset` loads a dataset whole, :mod:`~textcnn.data.splits` cuts it
  (CV folds, the validation carve, the split a model is scored on);
- :mod:`~textcnn.data.stream` is a training split kept on disk: a kind of split that yields
  batches, read by the same trainer as an in-memory one;
- :mod:`~textcnn.data.batch` is the batch type that training and inference both import;
- :mod:`~textcnn.data.inputs` reads ``predict --file``'s texts;
- :mod:`~textcnn.data.images` reads image datasets (digits, MNIST, IDX folders), whose
  :class:`~textcnn.data.images.ImageSplit` feeds a model as ``Encoded`` does.

Nothing here imports training, inference or the classifier: they import the data.

Example
-------
>>> from textcnn.config import TaskConfig
>>> raw = load_raw(TaskConfig(dataset=str(sst2_slice)))
>>> parts = make_splits(raw, seed=0)
>>> sorted(parts), raw.label_names
(['test', 'train', 'validation'], ['negative', 'positive'])
"""

from .batch import Encoded, sorted_batches, to_tensors
from .dataset import N_FOLDS, RawDataset, Split, labels_to_ids, load_raw
from .labels import LabelMap, check_classes, check_names, check_trainable, normalize
from .resolve import (
    FILE_FORMATS,
    KNOWN,
    SPLIT_NAMES,
    HubSpec,
    Meta,
    data_dir_from,
    looks_like_hub_id,
    read_meta,
    resolve,
)
from .splits import carve_validation, cv_folds, fold_protocol, make_splits, select_split

__all__ = [
    "FILE_FORMATS", "KNOWN", "N_FOLDS", "SPLIT_NAMES", "Encoded", "HubSpec", "LabelMap", "Meta",
    "RawDataset", "Split", "carve_validation", "check_classes", "check_names",
    "check_trainable", "cv_folds", "data_dir_from", "fold_protocol", "labels_to_ids",
    "load_raw", "looks_like_hub_id", "make_splits", "normalize", "read_meta", "resolve",
    "select_split", "sorted_batches", "to_tensors",
]
