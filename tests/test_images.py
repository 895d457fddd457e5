"""The 2D path: image datasets (digits, IDX folders), ImageCNN, config checks, model folder."""

import gzip
import json

import numpy as np
import pytest
import torch
import yaml
from sklearn.model_selection import StratifiedKFold

from textcnn.classifier import TextClassifier, load
from textcnn.cli import main
from textcnn.config import TaskConfig, from_dict
from textcnn.core import ConvBlock
from textcnn.data import cv_folds, make_splits
from textcnn.data.images import load_idx_folder, load_images, read_idx
from textcnn.errors import ConfigError, DataError, ModelFolderError
from textcnn.modality import load_datasets
from textcnn.models import ImageCNN, build_model
from textcnn.runs import evaluate_folder, train_and_evaluate


def idx_bytes(array: np.ndarray) -> bytes:
    """A standard IDX file (uint8) for ``array``."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, n=40, prefixes=("t10k",), gz=True, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix in prefixes:
        images = rng.integers(0, 256, (n, 6, 5), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            raw = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte" + (".gz" if gz else "")
            (folder / name).write_bytes(gzip.compress(raw) if gz else raw)
        arrays[prefix] = (images, labels)
    return arrays


def image_config(**over):
    data = {"tasks": {"digit": {"dataset": "digits"}},
            "model": {"name": "imagecnn", "blocks": [32, 64], "norm": "batch", "dropout": 0.2},
            "train": {"epochs": 3, "lr": 0.003, "threads": 1, "seed": 0, "patience": 3}}
    for key, value in over.items():
        data[key] = {**data.get(key, {}), **value}
    return data


# -- datasets ---------------------------------------------------------------------------------
def test_digits_is_an_all_split_with_text_style_folds():
    raw = load_images(TaskConfig(dataset="digits"))
    split = raw.splits["all"]
    assert raw.is_cv and split.images.shape == (1797, 1, 8, 8)
    assert split.images.dtype == np.float32 and split.images.min() == 0
    assert split.images.max() == 1.0 and raw.label_names == [str(i) for i in range(10)]
    folds = cv_folds(raw)
    expected = np.empty(1797, dtype=np.int64)
    skf = StratifiedKFold(10, shuffle=True, random_state=0)
    for k, (_, test) in enumerate(skf.split(np.zeros(1797), split.labels)):
        expected[test] = k
    np.testing.assert_array_equal(folds, expected)
    parts = make_splits(raw, seed=0, fold=0)
    assert len(parts["test"]) == 180 and len(parts["train"]) + len(parts["validation"]) == 1617
    images, lengths = parts["train"].batch(np.array([0, 5]))
    assert images.shape == (2, 1, 8, 8) and lengths.tolist() == [8, 8]


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_round_trip(tmp_path, gz):
    arrays = write_idx_folder(tmp_path / "m", gz=gz)
    images, labels = arrays["t10k"]
    np.testing.assert_array_equal(read_idx(next((tmp_path / "m").glob("t10k-images*")), 3),
                                  images)
    raw = load_idx_folder(tmp_path / "m")
    assert raw.is_cv and raw.splits["all"].images.shape == (40, 1, 6, 5)
    np.testing.assert_allclose(raw.splits["all"].images[:, 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(raw.splits["all"].labels, labels)
    both = write_idx_folder(tmp_path / "both", prefixes=("train", "t10k"))
    raw = load_idx_folder(tmp_path / "both")
    assert set(raw.splits) == {"train", "test"} and not raw.is_cv
    np.testing.assert_array_equal(raw.splits["train"].labels, both["train"][1])


def test_bad_idx_files_name_the_file(tmp_path):
    folder = tmp_path / "m"
    write_idx_folder(folder, gz=False)
    path = folder / "t10k-images-idx3-ubyte"
    good = path.read_bytes()
    path.write_bytes(b"\x00\x00\x09\x07" + good[4:])  # wrong type / dims
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: wrong magic number 0x00000907"):
        load_idx_folder(folder)
    path.write_bytes(good[:-7])  # truncated data
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: truncated: .*40x6x5"):
        load_idx_folder(folder)
    path.write_bytes(gzip.compress(good)[:-20])  # truncated gzip stream
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: truncated gzip"):
        load_idx_folder(folder)
    path.write_bytes(good)
    labels = folder / "t10k-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.zeros(39)))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: 39 labels for 40 images"):
        load_idx_folder(folder)
    labels.unlink()
    with pytest.raises(DataError, match="no matching t10k-labels"):
        load_idx_folder(folder)


def test_mnist_name_resolves_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("TEXTCNN_DATA_DIR", raising=False)
    write_idx_folder(tmp_path / "mnist-t10k")
    raw = load_images(TaskConfig(dataset="mnist"), tmp_path)
    assert raw.source == str(tmp_path / "mnist-t10k") and len(raw.splits["all"]) == 40
    with pytest.raises(DataError, match="looked in .*nowhere/mnist-t10k"):
        load_images(TaskConfig(dataset="mnist"), tmp_path / "nowhere")
    with pytest.raises(DataError, match="'sst2' is not an image dataset"):
        load_images(TaskConfig(dataset="sst2"), tmp_path)


def test_shared_mnist_t10k(data_dir):
    raw = load_images(TaskConfig(dataset="mnist"), data_dir)
    split = raw.splits["all"]
    assert split.images.shape == (10000, 1, 28, 28) and raw.is_cv
    assert np.bincount(split.labels).tolist()[:3] == [980, 1135, 1032]  # the known t10k counts
    assert len(make_splits(raw, 0, 0)["test"]) == 1000


# -- config -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, key",
    [
        (image_config(tokenizer={"kind": "word"}), "'tokenizer'"),
        (image_config(model={"kernel_sizes": [3, 4]}), "'model.kernel_sizes'"),
        (image_config(model={"embedding_dim": 8}), "'model.embedding_dim'"),
        ({"tasks": {"s": {"dataset": "sst2"}}, "model": {"blocks": [8]}}, "'model.blocks'"),
        ({"tasks": {"s": {"dataset": "sst2"}}, "model": {"kernel_size": 3}}, "'model.kernel_size'"),
        (image_config(model={"blocks": []}), "'model.blocks'"),
        (image_config(model={"pool": 0}), "'model.pool'"),
    ],
)
def test_wrong_kind_of_key_names_it(data, key):
    with pytest.raises(ConfigError, match=key):
        from_dict(data)


def test_config_json_holds_only_keys_of_its_kind():
    image = from_dict(image_config()).to_dict()
    assert "tokenizer" not in image and "kernel_sizes" not in image["model"]
    assert image["model"]["blocks"] == [32, 64] and from_dict(image).to_dict() == image
    text = from_dict({"tasks": {"s": {"dataset": "sst2"}}}).to_dict()
    assert "blocks" not in text["model"] and text["tokenizer"]["kind"] == "word"


def test_cli_rejects_text_keys_in_an_image_config(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(image_config(model={"kernel_sizes": [3]})))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "model.kernel_sizes" in err and len(err.strip().splitlines()) == 1


# -- model ------------------------------------------------------------------------------------
def test_image_cnn_is_built_from_the_shared_block():
    model = ImageCNN(3, {"a": 4, "b": 2}, blocks=(8, 8, 16), residual=True, norm="batch")
    assert all(isinstance(block, ConvBlock) for block in model.core)
    assert [b.residual for b in model.core] == [False, True, False]
    x = torch.randn(5, 3, 12, 10, requires_grad=True)
    out = model(x, torch.full((5,), 12))
    assert out["a"].shape == (5, 4) and out["b"].shape == (5, 2)
    out["a"].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    cfg = from_dict(image_config()).model
    assert isinstance(build_model(cfg, 1, {"digit": 10}), ImageCNN)


# -- training through the shared trainer --------------------------------------------------------
@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    config = from_dict(image_config())
    out = tmp_path_factory.mktemp("digits") / "model"
    clf, metrics = train_and_evaluate(config, load_datasets(config), out, log=lambda line: None)
    return clf, metrics, out


def test_digits_train_writes_the_shared_model_folder(digits_run):
    clf, metrics, out = digits_run
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.json", "history.jsonl"} <= names
    assert "tokenizer.json" not in names and "checkpoint.safetensors" not in names
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == {**metrics, **clf.timing} and set(saved["digit"]) == {"validation", "test"}
    assert saved["digit"]["test"]["accuracy"] > 0.95  # 3 epochs of a small CNN; chance 0.1
    config = json.loads((out / "config.json").read_text())
    assert config["image"] == {"shape": [1, 8, 8], "scale": 16.0}
    assert config["heads"] == {"digit": [str(i) for i in range(10)]}
    assert len((out / "history.jsonl").read_text().splitlines()) == 3


def test_image_folder_round_trip_and_evaluate(digits_run, capsys):
    clf, metrics, out = digits_run
    loaded = load(out)
    assert loaded.kind == "image" and loaded.backend == "torch"
    from sklearn.datasets import load_digits

    pixels = load_digits().images[:50]  # raw 0..16 pixels
    np.testing.assert_allclose(loaded.predict_proba(pixels)["digit"],
                               clf.predict_proba(pixels)["digit"], atol=1e-6)
    top = loaded.predict(pixels[:2], top_k=2)
    assert len(top) == 2 and len(top[0]["digit"]) == 2
    assert evaluate_folder(out, "digits")["digit"]["test"] == metrics["digit"]["test"]
    with pytest.raises(ModelFolderError, match="kind 'image', not 'text'"):
        TextClassifier.from_pretrained(out)
    assert main(["predict", str(out), "a text"]) == 2
    assert "is an image model" in capsys.readouterr().err


def test_cli_train_and_cv_on_digits(tmp_path, capsys):
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(image_config(train={"epochs": 1})))
    assert main(["cv", str(path), "--folds", "2", "--output", str(tmp_path / "cv")]) == 0
    result = json.loads((tmp_path / "cv" / "cv_metrics.json").read_text())["digit"]
    assert len(result["folds"]) == 2 and result["mean"]["accuracy"] > 0.5
