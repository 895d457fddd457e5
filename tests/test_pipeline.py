import shutil

import numpy as np
import pytest

from textcnn.classifier import TextClassifier
from textcnn.errors import InputError, ModelFolderError


def test_predict_shape_matches_design(trained):
    clf, _ = trained
    out = clf.predict(["a gorgeous , witty film", "a dull , lifeless mess"], top_k=2)
    assert len(out) == 2 and set(out[0]) == {"sentiment"}
    first = out[0]["sentiment"]
    assert [set(d) for d in first] == [{"label", "score"}] * 2
    assert {d["label"] for d in first} == {"negative", "positive"}
    assert first[0]["score"] >= first[1]["score"]
    assert abs(sum(d["score"] for d in first) - 1) < 1e-5
    assert len(clf.predict(["ok"])[0]["sentiment"]) == 1  # top_k=1 by default
    assert len(clf.predict(["ok"], top_k=10)[0]["sentiment"]) == 2  # capped at the classes


def test_empty_and_huge_texts_answer(trained):
    clf, _ = trained
    out = clf.predict(["", "great " * 3000, "   "])  # 18,000 characters: within the limit
    assert len(out) == 3 and all(0 <= r["sentiment"][0]["score"] <= 1 for r in out)
    assert clf.predict([]) == []
    assert clf.prepare(["great " * 3000, "great"]).truncated.tolist() == [True, False]


def test_a_text_over_the_character_limit_is_read_to_the_limit(trained):
    clf, _ = trained
    assert clf.max_chars == 20_000  # max_length 256: the server's default --max-chars
    long = "great " * 8000  # 48,000 characters
    assert clf.predict(["ok", long]) == clf.predict(["ok", long[:20_000]])
    explained = clf.explain([long])[0]["heads"]["sentiment"]
    assert explained["label"] == clf.predict([long])[0]["sentiment"][0]["label"]


def test_order_is_restored_after_length_sorting(trained):
    clf, _ = trained
    texts = ["bad", "a long and winding , wonderful , moving story " * 3, "fine", ""]
    together = clf.predict_proba(texts)["sentiment"]
    alone = np.concatenate([clf.predict_proba([t])["sentiment"] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_bad_prediction_input(trained):
    clf, _ = trained
    assert clf.predict("just one") == clf.predict(["just one"])  # a bare string is one text
    with pytest.raises(InputError, match=r"texts\[1\] must be a string"):
        clf.predict(["ok", 3])
    with pytest.raises(InputError, match="top_k"):
        clf.predict(["ok"], top_k=0)
    with pytest.raises(InputError, match="unknown head"):
        clf.predict(["ok"], head="topic")


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json"])
def test_missing_or_corrupt_folder_files(trained, tmp_path, name):
    _, folder = trained
    copy = tmp_path / "m"
    shutil.copytree(folder, copy)
    (copy / name).write_bytes(b"{not really")
    with pytest.raises(ModelFolderError, match=f"corrupt .*{name}"):
        TextClassifier.from_pretrained(copy)
    (copy / name).unlink()
    with pytest.raises(ModelFolderError, match=f"missing {name}"):
        TextClassifier.from_pretrained(copy)
    with pytest.raises(ModelFolderError, match="model folder not found"):
        TextClassifier.from_pretrained(tmp_path / "nowhere")
