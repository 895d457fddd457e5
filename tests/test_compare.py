"""``textcnn compare``: both halves on small data, and one half when a dataset is missing."""

import json

import pytest

from textcnn.cli import main
from textcnn.contrib.studies import compare
from textcnn.contrib.studies.parity import TOLERANCE

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(compare, "SPEED_SECONDS", 0.2)


def test_compare_writes_the_report(sst2_slice, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    code = main(["compare", "--output", str(out), "--text-dataset", str(sst2_slice),
                 "--text-train-size", "1500", "--text-epochs", "2", "--image-epochs", "3",
                 "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    for name in ("curves.png", "image_filters.png", "text_filters.png"):
        assert (out / name).read_bytes()[:8] == PNG
    assert (out / "text-model" / "tokenizer.json").is_file()
    assert (out / "image-model" / "metrics.json").is_file()
    results = json.loads((out / "results.json").read_text())
    text, image = results["sides"]["text"], results["sides"]["image"]
    assert results["missing"] == [] and results["threads"] == 1
    assert text["sizes"] == {"train": 1500, "validation": 400, "test": 600}  # train sampled
    assert text["metrics"]["test"]["accuracy"] > 0.55 and image["metrics"]["test"]["accuracy"] > 0.9
    # FLOPs from the shapes: image = conv 8x8x32x(1x3x3) + conv 4x4x64x(32x3x3) + linear 64x10
    assert image["flops"] == 2 * (8 * 8 * 32 * 9 + 4 * 4 * 64 * 32 * 9 + 64 * 10)
    assert text["params"] > text["embedding_params"] > 0 and image["embedding_params"] == 0
    assert min(text["train_speed"], text["infer_speed"], image["infer_speed"]) > 0
    assert all(0 <= d < TOLERANCE for d in results["parity"].values())
    filters = results["filters"]
    assert len(filters) == 8 and {f["favours"] for f in filters} == {"negative", "positive"}
    assert all(len(g.split()) == 3 for f in filters for g, _ in f["ngrams"])
    report = (out / "report.md").read_text()
    for needle in ("| parameters", "FLOPs per example", "training examples/s",
                   "inference examples/s", "test accuracy", "![learning curves](curves.png)",
                   "![image filters](image_filters.png)", "## Parity checks", "| pass |",
                   "How to read this table", "colour bar", "`favours` is the class",
                   "Each row computes one operation twice",
                   "### Why the two sides' filters are shown differently"):
        assert needle in report, needle
    assert "FAIL" not in report and "Missing" not in report
    assert f"`textcnn compare --output {out} --text-dataset" in report  # the command line typed


def test_compare_with_a_missing_dataset_writes_the_half_it_can(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTCNN_DATA_DIR", str(tmp_path / "empty"))
    out = tmp_path / "report"
    (out / "text-model").mkdir(parents=True)  # left over from an earlier run: removed
    (out / "text-model" / "config.json").write_text("{}")
    results = compare.run(out, image_epochs=1, threads=1, log=lambda line: None,
                          command="compare.run(image_epochs=1)")
    assert list(results["sides"]) == ["image"] and not (out / "text-model").exists()
    assert len(results["missing"]) == 1 and "sst2" in results["missing"][0]
    report = (out / "report.md").read_text()
    assert "## Missing" in report and "not run**: text dataset 'sst2' not found" in report
    assert "image (digits)" in report and "## Parity checks" in report
    assert report.count("`compare.run(image_epochs=1)`") == 1

    with pytest.raises(compare.DataError, match="no dataset found"):
        compare.run(out, image_dataset="mnist", threads=1, log=lambda line: None)
    report = (out / "report.md").read_text()
    assert "image dataset 'mnist'" in report and "## Parity checks" in report


@pytest.mark.parametrize("words", [2, 9])
def test_text_filters_figure_holds_every_ngram(tmp_path, words):
    """The n-gram table grows to fit its n-grams: nothing is cut at the figure's right edge."""
    image = pytest.importorskip("matplotlib.image")
    from textcnn.contrib.studies.compare_figures import plot_text_filters

    gram = " ".join(["remarkably"] * words)
    rows = [{"filter": i, "favours": "positive", "width": 3,
             "ngrams": [(f"{gram} {j}", 1.0) for j in range(3)]} for i in range(4)]
    assert plot_text_filters(rows, tmp_path / "f.png")
    pixels = image.imread(tmp_path / "f.png")  # (height, width, RGBA) floats
    assert pixels.shape[1] > 40 * words * 3  # wide enough for three such n-grams a row
    assert (pixels[:, -4:, :3] > 0.99).all()  # a white margin on the right: no text runs off
