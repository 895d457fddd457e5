"""The data package as one piece: one reader of ``dataset.json``, one reader per format shared by
whole and streamed reading, one label mapping for every path, and imports that run one way."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import textcnn
from textcnn.config import TaskConfig
from textcnn.data import LabelMap, load_raw
from textcnn.data.formats import read_rows, read_split
from textcnn.data.stream import load_stream
from textcnn.errors import DataError

PACKAGE = Path(textcnn.__file__).parent


def _imports(path: Path) -> set[str]:
    """The ``textcnn`` modules ``path`` imports at module level (relative imports resolved)."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = package[:-1] if package[-1] != "__init__" else package[:-1]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("textcnn")}


def test_dataset_json_is_named_by_one_module_only():
    named = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                   if any(isinstance(node, ast.Constant) and node.value == "dataset.json"
                          for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))))
    assert named == ["data/resolve.py"]


@pytest.mark.parametrize("path", sorted((PACKAGE / "data").glob("*.py")), ids=lambda p: p.name)
def test_the_data_package_imports_no_training_inference_or_classifier(path):
    later = ("textcnn.training", "textcnn.inference", "textcnn.classifier", "textcnn.modality",
             "textcnn.runs", "textcnn.chunked", "textcnn.backends", "textcnn.folder")
    assert not [name for name in _imports(path) if name.startswith(later)]


def test_inference_does_not_import_training_and_training_imports_inference_at_the_top():
    assert not [n for n in _imports(PACKAGE / "inference.py") if n.startswith("textcnn.training")]
    assert "textcnn.inference" in _imports(PACKAGE / "training" / "trainer.py")


def _folder(tmp_path: Path, train: list[dict], validation: list[dict], names=None) -> Path:
    folder = tmp_path / "set"
    folder.mkdir()
    for split, rows in (("train", train), ("validation", validation)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if names:
        (folder / "dataset.json").write_text(json.dumps({"label_names": names}))
    return folder


def test_whole_and_streamed_reading_give_the_same_ids_and_the_same_error(tmp_path):
    train = [{"text": f"t{i}", "label": 1 - i % 2} for i in range(6)]
    folder = _folder(tmp_path, train, [{"text": "v", "label": 1.0}], names=["neg", "pos"])
    whole = load_raw(TaskConfig(str(folder)))
    streamed = load_stream(TaskConfig(str(folder), stream=True))
    assert whole.label_names == streamed.label_names == ["neg", "pos"]
    # 1.0 is the id 1 on both paths (the stream refused a float before it shared the rules)
    assert whole.splits["validation"].labels.tolist() == [1]
    assert streamed.splits["validation"].labels.tolist() == [1]
    ids = [streamed.labels.id(label, where) for _, label, where in
           read_rows(folder / "train.jsonl", "text", "label")]
    assert ids == whole.splits["train"].labels.tolist() == [1, 0, 1, 0, 1, 0]
    (folder / "validation.jsonl").write_text('{"text": "v", "label": 7}\n')
    want = f"{folder / 'validation.jsonl'}:1: label 7 is outside the label names (0=neg, 1=pos)"
    for load in (lambda: load_raw(TaskConfig(str(folder))),
                 lambda: load_stream(TaskConfig(str(folder), stream=True))):
        with pytest.raises(DataError) as err:
            load()
        assert str(err.value) == want


def test_a_label_map_renumbers_a_dataset_onto_a_head_by_name():
    labels = LabelMap.declared(["neg", "pos"]).onto(["pos", "neg"])
    assert [labels.id(v, "f:1") for v in ("neg", "pos", 0, 1)] == [1, 0, 1, 0]
    by_name = LabelMap.by_name(["0", "1", "x"])
    assert [by_name.id(v, "f:1") for v in (1, "1", "x", 0.0)] == [1, 1, 2, 0]
    with pytest.raises(DataError, match=r"^f:2: label 2 is outside the label names "
                                        r"\(0=0, 1=1, 2=x\)$"):
        by_name.id(2, "f:2")


def test_csv_rows_name_the_line_they_start_on_on_both_paths(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"spans\ntwo lines",0\n,1\n')
    with pytest.raises(DataError, match=r"d\.csv: row 2 \(line 4\): missing text field 'text'$"):
        read_split(path, "text", "label")
    with pytest.raises(DataError, match=r"d\.csv: row 2 \(line 4\): missing text field 'text' "):
        list(read_rows(path, "text", "label"))


def test_a_streamed_csv_row_with_an_extra_field_fails_naming_its_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\nfine,1\n\"a, b\",0,extra\n")
    with pytest.raises(DataError, match=r"train\.csv:3: 3 fields, but the header has 2"):
        list(read_rows(path, "text", "label"))


def test_a_whole_csv_column_is_typed_as_one_and_a_streamed_cell_alone(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label,fold\na,1.0,3\nb,2,4\n")
    split = read_split(path, "text", "label")
    assert split.labels == [1.0, 2.0] and split.folds.tolist() == [3, 4]
    assert [label for _, label, _ in read_rows(path, "text", "label")] == ["1.0", 2]
    assert np.asarray(split.lines).tolist() == [2, 3]


def test_an_idx_label_outside_the_names_fails_like_a_text_label(tmp_path):
    from textcnn.data.images import load_idx_folder

    folder = tmp_path / "idx"
    folder.mkdir()
    images, labels = np.zeros((3, 2, 2), np.uint8), np.array([0, 11, 1], np.uint8)
    for name, array in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
        (folder / name).write_bytes(header + array.tobytes())
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: row 2: label 11 is outside "
                                        r"the label names \(0=0, 1=1, .*9=9\)$"):
        load_idx_folder(folder)
