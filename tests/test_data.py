import json

import numpy as np
import pytest

from textcnn.config import TaskConfig
from textcnn.data import load_raw, make_splits
from textcnn.errors import DataError


def test_known_name_resolves_to_the_local_folder(data_dir):
    raw = load_raw(TaskConfig("sst2"), data_dir)
    assert raw.label_names == ["negative", "positive"]
    assert {k: len(v) for k, v in raw.splits.items()} == {"train": 6920, "validation": 872,
                                                          "test": 1821}
    assert raw.splits["train"].labels.dtype == np.int64


def test_cv_dataset_folds_and_carved_validation(data_dir):
    raw = load_raw(TaskConfig("mr"), data_dir)
    assert raw.is_cv and sorted(set(raw.folds.tolist())) == list(range(10))
    parts = make_splits(raw, seed=0, fold=3)
    assert len(parts["test"]) == int((raw.folds == 3).sum())
    n_rest = len(raw.splits["all"]) - len(parts["test"])
    assert len(parts["train"]) + len(parts["validation"]) == n_rest
    assert abs(len(parts["validation"]) - n_rest / 10) <= 1
    # stratified: both classes near 50% in the carved validation split
    assert abs(parts["validation"].labels.mean() - 0.5) < 0.02
    # the seed picks the validation rows
    other = make_splits(raw, seed=1, fold=3)
    assert parts["validation"].texts != other["validation"].texts


def test_folds_assigned_when_missing(tmp_path):
    rows = [{"text": f"text {i}", "label": i % 2} for i in range(40)]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = load_raw(TaskConfig(str(path)))
    parts = make_splits(raw, fold=0)
    assert len(parts["test"]) == 4 and raw.label_names == ["0", "1"]


def test_csv_tsv_with_string_labels_and_custom_columns(tmp_path):
    (tmp_path / "d.tsv").write_text("sentence\tmood\n" + "".join(
        f"great film {i}\tpos\nawful film {i}\tneg\n" for i in range(10)))
    raw = load_raw(TaskConfig(str(tmp_path / "d.tsv"), text_column="sentence",
                              label_column="mood"))
    assert raw.label_names == ["neg", "pos"]
    assert raw.splits["all"].texts[0] == "great film 0" and raw.splits["all"].labels[0] == 1


def _folder(tmp_path, lines, names=("negative", "positive")):
    (tmp_path / "dataset.json").write_text(json.dumps({"label_names": list(names)}))
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    return TaskConfig(str(tmp_path))


def test_bad_json_line_names_file_and_line(tmp_path):
    task = _folder(tmp_path, ['{"text": "a", "label": 0}', '{"text": "b", "label": 1}',
                              '{"text": "c", "label": '])
    with pytest.raises(DataError, match=r"train.jsonl:3: not valid JSON"):
        load_raw(task)


def test_missing_field_names_file_and_line(tmp_path):
    task = _folder(tmp_path, ['{"text": "a", "label": 0}', "", '{"label": 1}'])
    with pytest.raises(DataError, match=r"train.jsonl:3: missing text field 'text'"):
        load_raw(task)


def test_missing_label_column_is_named(tmp_path):
    task = _folder(tmp_path, ['{"text": "a"}', '{"text": "b"}'])
    with pytest.raises(DataError, match=r"no column 'label'"):
        load_raw(task)


def test_label_outside_label_names(tmp_path):
    task = _folder(tmp_path, ['{"text": "a", "label": 0}', '{"text": "b", "label": 7}'])
    with pytest.raises(DataError, match=r"train.jsonl:2: label 7 is outside the label names"):
        load_raw(task)


def test_an_empty_split_file_is_named(tmp_path):
    task = _folder(tmp_path, ["", "  "])
    (tmp_path / "test.jsonl").write_text('{"text": "a", "label": 0}\n')
    with pytest.raises(DataError, match=r"train.jsonl: no data rows \(the file is empty"):
        load_raw(task)


def test_unknown_dataset_offline_names_both_places(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        load_raw(TaskConfig("sst2"), tmp_path)
    message = str(err.value)
    assert str(tmp_path / "sst2" / "dataset.json") in message and "SetFit/sst2" in message
    with pytest.raises(DataError, match="unknown dataset 'nosuchset'"):
        load_raw(TaskConfig("nosuchset"), tmp_path)
    with pytest.raises(DataError, match="dataset path not found"):
        load_raw(TaskConfig(str(tmp_path / "nope.jsonl")), tmp_path)
