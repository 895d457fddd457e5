"""Model cards: every folder `train` writes has a README.md whose front matter holds exactly the
numbers of metrics.json; `textcnn card` rewrites it; `cv` folders get the fold table."""

from __future__ import annotations

import json
from pathlib import Path

from textcnn.card import card_metrics, model_card, read_front_matter, write_card
from textcnn.cli import main
from textcnn.config import load_config
from textcnn.runs import cross_validate

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ["train.epochs=1", "model.blocks=[8]", "model.norm=none"]


def metrics_of(folder: Path) -> dict:
    """metrics.json's heads (the run's timing numbers beside them are no model-index metric)."""
    metrics = json.loads((folder / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if isinstance(v, dict)}


def body_of(card: Path) -> str:
    return card.read_text().split("\n---\n", 1)[1]


def test_train_writes_a_card_with_the_metrics(trained):
    _, folder = trained
    front = read_front_matter(folder / "README.md")
    assert front["library_name"] == "textcnn" and "text-classification" in front["tags"]
    assert card_metrics(front) == metrics_of(folder)  # every head, split and metric, exactly
    assert set(front["metrics"]) == {"accuracy", "f1", "loss"}
    assert "datasets" not in front  # a local sample, not a Hub dataset
    result = front["model-index"][0]["results"][0]
    assert result["task"] == {"type": "text-classification", "name": "sentiment"}
    body = body_of(folder / "README.md")
    test = metrics_of(folder)["sentiment"]["test"]
    assert f"| sentiment | test | {test['accuracy']:.4f} | {test['macro_f1']:.4f} |" in body
    for section in ("## Data", "## Config in short", "## Results", "## How it was trained",
                    "## Intended use and limits", "## Versions"):
        assert section in body
    assert "negative, positive" in body and "kernel_sizes=[3, 4, 5]" in body
    timing = json.loads((folder / "metrics.json").read_text())
    assert (f"Epoch {timing['best_epoch']} of {timing['epochs']} was the best, "
            f"{timing['seconds_to_best']:.1f} s into a {timing['seconds']:.1f} s run.") in body
    assert "textcnn 0.1.0 wrote this folder" in body and "Texts past 64 tokens" in body


def test_cli_train_card_names_the_command_and_card_rewrites(tmp_path, capsys):
    out = tmp_path / "digits model"
    args = ["train", str(ROOT / "configs" / "images" / "digits.yaml"), "--output", str(out)]
    for o in DIGITS:
        args += ["--set", o]
    assert main(args) == 0
    card = out / "README.md"
    front = read_front_matter(card)
    assert card_metrics(front) == metrics_of(out)
    assert front["pipeline_tag"] == "image-classification" in front["tags"]
    assert f"'{out}'" in body_of(card)  # the command as typed, quoted for a shell
    first = card.read_text()
    assert main(["card", str(out)]) == 0 and card.read_text() == first  # the command is kept
    assert main(["card", str(out), "--command", "textcnn train other.yaml"]) == 0
    assert "```bash\ntextcnn train other.yaml\n```" in card.read_text()
    capsys.readouterr()
    assert main(["card", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ") and not (tmp_path / "README.md").exists()


def test_card_of_several_heads_and_any_metric(tmp_path):
    metrics = {"sentiment": {"validation": {"accuracy": 0.8125, "macro_f1": 0.8, "loss": 0.41},
                             "test": {"accuracy": 0.79, "macro_f1": 0.7888, "loss": 0.45}},
               "topic": {"test": {"accuracy": 0.5, "micro_f1": 0.6, "subset_accuracy": 0.25}}}
    config = {"tasks": {"sentiment": {"dataset": "sst2"}, "topic": {"dataset": "org/topics"}},
              "model": {"name": "textcnn"}, "train": {"epochs": 3},
              "heads": {"sentiment": ["negative", "positive"], "topic": ["a", "b", "c"]},
              "kind": "text", "textcnn_version": "0.1.0"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    front = read_front_matter(write_card(tmp_path))
    assert card_metrics(front) == metrics
    assert front["datasets"] == ["SetFit/sst2", "org/topics"]
    assert "&id" not in (tmp_path / "README.md").read_text()  # no YAML anchors
    assert model_card(tmp_path).count("## Results") == 1


def test_cv_writes_a_card_with_the_fold_table(tmp_path):
    config = load_config(ROOT / "configs" / "images" / "digits.yaml", DIGITS)
    result = cross_validate(config, folds=2, output=tmp_path, log=lambda line: None,
                            command="textcnn cv configs/images/digits.yaml --folds 2")
    card = tmp_path / "README.md"
    front = read_front_matter(card)
    [cv] = [r for r in front["model-index"][0]["results"] if r["dataset"]["split"] == "cv"]
    means = {m["name"]: m["value"] for m in cv["metrics"]}
    assert means == {f"{k}_mean": v for k, v in result["digit"]["mean"].items()}
    body = body_of(card)
    folds = result["digit"]["folds"]
    assert "### digit: 2 folds" in body
    assert "textcnn cv configs/images/digits.yaml --folds 2" in body
    for i, fold in enumerate(folds, 1):
        assert f"| {i} | {fold['accuracy']:.4f} | {fold['macro_f1']:.4f} |" in body
    mean, std = result["digit"]["mean"]["accuracy"], result["digit"]["std"]["accuracy"]
    assert f"| mean ± std | {mean:.4f} ± {std:.4f} |" in body
    assert json.loads((tmp_path / "cv_config.json").read_text())["model"]["blocks"] == [8]
    text = card.read_text()
    assert main(["card", str(tmp_path)]) == 0 and card.read_text() == text
