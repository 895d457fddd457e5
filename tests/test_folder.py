"""The model folder: one writer, one reader; stored folders load and predict what they did."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import textcnn
from textcnn.classifier import ImageClassifier, TextClassifier
from textcnn.errors import ModelFolderError

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ROOT / "tests" / "fixtures" / "model-folders"
EXPECTED = json.loads((FOLDERS / "expected.json").read_text())


@pytest.mark.parametrize("name", ["textcnn-multitask", "dpcnn"])
@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_stored_text_folders_load_and_predict_the_same(name, backend):
    clf = textcnn.load(FOLDERS / name, backend=backend)
    assert isinstance(clf, TextClassifier) and clf.kind == "text"
    got = clf.predict_proba(EXPECTED["texts"])
    want = EXPECTED["probabilities"][name]
    assert set(got) == set(want)
    for head, probabilities in want.items():
        np.testing.assert_allclose(got[head], probabilities, atol=1e-6, rtol=0)


def test_a_stored_image_folder_loads_and_predicts_the_same():
    clf = textcnn.load(FOLDERS / "imagecnn")
    assert isinstance(clf, ImageClassifier) and clf.shape == (1, 8, 8) and clf.scale == 16.0
    got = clf.predict_proba(np.array(EXPECTED["pixels"], dtype=np.float32))["digit"]
    np.testing.assert_allclose(got, EXPECTED["probabilities"]["imagecnn"]["digit"], atol=1e-6)


@pytest.mark.parametrize("name", ["textcnn-multitask", "dpcnn", "imagecnn"])
def test_a_folder_written_again_is_kind_tagged_and_predicts_the_same(name, tmp_path):
    old = textcnn.load(FOLDERS / name, backend="torch")
    new = textcnn.load(old.save(tmp_path / name), backend="torch")
    saved = json.loads((tmp_path / name / "config.json").read_text())
    assert saved["kind"] == old.kind and saved["heads"] == old.heads
    assert saved["textcnn_version"] == textcnn.__version__
    probe = EXPECTED["texts"] if old.kind == "text" else np.array(EXPECTED["pixels"])
    for head, p in old.predict_proba(probe).items():
        np.testing.assert_array_equal(new.predict_proba(probe)[head], p)


def _copy(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(FOLDERS / name, folder)
    return folder


def _edit_config(folder: Path, edit) -> None:
    data = json.loads((folder / "config.json").read_text())
    edit(data)
    (folder / "config.json").write_text(json.dumps(data))


@pytest.mark.parametrize(("key", "value", "tensor"), [
    ("channels", 10**6, r"core\.blocks\.0\.conv\.bias' is \[8\] but config.json implies "
                        r"\[1000004\]"),
    ("embedding_dim", 10**9, r"core\.blocks\.0\.conv\.weight' is \[8, 8, 2\]"),
])
def test_a_config_that_does_not_match_the_weights_names_the_tensor(tmp_path, key, value, tensor):
    folder = _copy("textcnn-multitask", tmp_path)
    _edit_config(folder, lambda data: data["model"].update({key: value}))
    with pytest.raises(ModelFolderError, match=f"does not match config.json: its tensor '{tensor}"):
        textcnn.load(folder)  # checked on shapes only: nothing of that size is allocated


# the peak resident memory of this process image: VmHWM (ru_maxrss would count the parent's
# pages a vfork-ed child shared before its exec)
PEAK_RSS = """
import re, sys, textcnn
try:
    textcnn.load(sys.argv[1])
except textcnn.ModelFolderError as exc:
    print(exc)
with open("/proc/self/status") as fh:
    print(re.search(r"VmHWM:\\s+(\\d+) kB", fh.read()).group(1))
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(("name", "key", "value"), [
    ("textcnn-multitask", "channels", 10**6), ("textcnn-multitask", "embedding_dim", 10**9),
    ("dpcnn", "depth", 10**9)])
def test_a_config_asking_for_a_huge_network_fails_in_little_memory(tmp_path, name, key, value):
    folder = _copy(name, tmp_path)
    _edit_config(folder, lambda data: data["model"].update({key: value}))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, str(folder)], capture_output=True,
                          text=True, env=env, timeout=300)
    message, peak_kib = done.stdout.strip().splitlines()
    assert f"{folder / 'model.safetensors'} does not match config.json" in message, done.stderr
    assert int(peak_kib) < 300 * 1024  # the whole process: python, torch and textcnn included


def test_heads_that_are_not_label_lists_are_a_corrupt_config(tmp_path):
    folder = _copy("dpcnn", tmp_path)
    for heads in (3, ["topic"], {"topic": "abc"}, {"topic": []}):
        _edit_config(folder, lambda data, heads=heads: data.update(heads=heads))
        with pytest.raises(ModelFolderError, match="corrupt .*config.json.*heads"):
            textcnn.load(folder)


def test_a_head_with_another_class_count_names_the_tensor(tmp_path):
    folder = _copy("dpcnn", tmp_path)
    _edit_config(folder, lambda data: data.update(heads={"topic": ["a", "b"]}))
    message = r"'heads.layers.topic.bias' is \[3\] but config.json implies \[2\]"
    with pytest.raises(ModelFolderError, match=message):
        textcnn.load(folder)


def test_unknown_kind_and_wrong_kind(tmp_path):
    folder = _copy("imagecnn", tmp_path)
    with pytest.raises(ModelFolderError, match="kind 'image', not 'text'"):
        TextClassifier.from_pretrained(folder)
    _edit_config(folder, lambda data: data.update(kind="audio"))
    with pytest.raises(ModelFolderError, match="unknown model kind 'audio'"):
        textcnn.load(folder)


def _edited_weights(tmp_path: Path) -> tuple[Path, dict]:
    """A folder written by this version (so config.json records weights_sha256) whose weights
    were then changed in place, every shape kept; and the original's probabilities."""
    from safetensors.torch import load_file, save_file

    original = textcnn.load(FOLDERS / "dpcnn", backend="torch")
    folder = original.save(tmp_path / "edited")
    state = load_file(str(folder / "model.safetensors"))
    name = sorted(state)[0]
    state[name] = state[name] + 0.5
    save_file(state, str(folder / "model.safetensors"))
    return folder, original.predict_proba(EXPECTED["texts"])


def test_weights_changed_after_writing_fail_to_load(tmp_path, monkeypatch, capsys):
    from textcnn.cli import main

    folder, want = _edited_weights(tmp_path)
    message = (f"{folder / 'model.safetensors'} does not match config.json: its SHA-256 is "
               r"[0-9a-f]{12}\.\.\., but config.json records [0-9a-f]{12}\.\.\.")
    with pytest.raises(ModelFolderError, match=message):
        textcnn.load(folder)
    assert main(["predict", str(folder), "a text"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "verify=False" in err
    # the opt-outs: verify=False in Python, TEXTCNN_VERIFY_WEIGHTS=0 for the command line
    edited = textcnn.load(folder, backend="torch", verify=False)
    assert not np.allclose(edited.predict_proba(EXPECTED["texts"])["topic"], want["topic"])
    monkeypatch.setenv("TEXTCNN_VERIFY_WEIGHTS", "0")
    assert main(["predict", str(folder), "a text"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"]["topic"]
    monkeypatch.delenv("TEXTCNN_VERIFY_WEIGHTS")
    again = edited.save(tmp_path / "resaved")  # saving records the new weights' hash
    textcnn.load(again)


def test_a_recorded_hash_that_is_no_string_is_a_corrupt_config(tmp_path):
    folder = textcnn.load(FOLDERS / "dpcnn", backend="torch").save(tmp_path / "m")
    _edit_config(folder, lambda data: data.update(weights_sha256=12))
    with pytest.raises(ModelFolderError, match="corrupt .*config.json: 'weights_sha256' must be"):
        textcnn.load(folder)
