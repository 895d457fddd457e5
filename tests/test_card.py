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


HOSTILE_LABELS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
                  "two\n# lines", "a|b", "[x](javascript:alert(1))", "&lt;b&gt;", "*bold*"]
HOSTILE_COMMAND = "textcnn train a.yaml\n```\n<script>alert(2)</script>\n````\nnot code"


def _hostile_folder(folder: Path, metrics=None, labels=HOSTILE_LABELS) -> Path:
    config = {"tasks": {"sentiment": {"dataset": "data`|<b>x</b>.jsonl"}},
              "model": {"name": "textcnn", "pretrained": "<img src=y onerror=alert(3)>"},
              "tokenizer": {"kind": "word", "max_length": 64}, "train": {"epochs": 3},
              "heads": {"sentiment": labels}, "kind": "text", "textcnn_version": "0.1.0"}
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    scores = {"sentiment": {"test": {"accuracy": 0.5, "macro_f1": 0.4}}}
    (folder / "metrics.json").write_text(json.dumps(scores if metrics is None else metrics))
    return folder


def _rendered(card: Path):
    """(HTML, tokens) of a card's body as a CommonMark renderer with tables and raw HTML on
    (as model hubs render cards) sees it."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    body = body_of(card)
    return md.render(body), md.parse(body)


def _trained_by(tokens) -> str:
    """The code block after the "How it was trained" heading."""
    at = next(i for i, t in enumerate(tokens) if t.content == "How it was trained")
    block = tokens[at + 2]
    assert block.type == "fence" and block.info == "bash"
    return block.content


def test_card_shows_labels_and_command_as_text_never_as_markup(tmp_path):
    folder = _hostile_folder(tmp_path / "m")
    card = write_card(folder, command=HOSTILE_COMMAND)
    page, tokens = _rendered(card)
    assert "<script" not in page.lower() and "<img" not in page.lower() and "<b>" not in page
    assert "javascript:" not in "".join(str(t.attrs) for t in tokens)  # no link was made
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["m", "Data", "Config in short", "Results", "How it was trained", "Use it",
                        "Intended use and limits", "Versions"]  # a label's newline adds none
    assert _trained_by(tokens) == HOSTILE_COMMAND + "\n"  # the whole command, in one block
    # the labels cell shows each label as it is (the renderer's HTML escapes, then the text)
    [labels] = [t for t in tokens if t.type == "inline" and "alert(1)" in t.content]
    shown = "".join(c.content for c in labels.children if c.type in ("text", "code_inline"))
    assert shown == ", ".join(label.replace("\n", "\\n") for label in HOSTILE_LABELS)
    data_rows = [t for t in tokens if t.type == "tr_open"]
    assert len(data_rows) == 2 + 2  # Data and Results tables: header + one row each ("a|b" kept)
    assert main(["card", str(folder)]) == 0  # the command is read back from the long fence
    assert _trained_by(_rendered(card)[1]) == HOSTILE_COMMAND + "\n"


def test_card_of_a_metrics_file_missing_fields_leaves_their_lines_out(tmp_path, capsys):
    folder = _hostile_folder(tmp_path / "m", labels=["negative", "positive"])
    scores = {"sentiment": {"test": {"accuracy": 0.5}}}
    for timing, sentence in [({}, None), ({"seconds": 9.0}, None),
                             ({"best_epoch": 2}, "Epoch 2 was the best."),
                             ({"best_epoch": 2, "epochs": 3}, "Epoch 2 of 3 was the best."),
                             ({"best_epoch": 2, "epochs": 3, "seconds_to_best": 1.5,
                               "seconds": 2.25}, "Epoch 2 of 3 was the best, 1.5 s into a 2.2 s "
                                                 "run.")]:
        (folder / "metrics.json").write_text(json.dumps({**scores, **timing}))
        assert main(["card", str(folder)]) == 0, capsys.readouterr().err
        body = body_of(folder / "README.md")
        assert "| sentiment | test | 0.5000 |" in body
        assert ("was the best" in body) == (sentence is not None)
        assert sentence is None or sentence in body
    (folder / "metrics.json").write_text(json.dumps({"sentiment": {"test": "n/a"}, "epochs": 3}))
    (folder / "cv_metrics.json").write_text(json.dumps({"sentiment": {"folds": [
        {"accuracy": 0.5}]}}))  # no mean, no std
    assert main(["card", str(folder)]) == 0, capsys.readouterr().err
    assert "### sentiment: 1 folds" in body_of(folder / "README.md")
    assert "mean ± std" not in body_of(folder / "README.md")
    capsys.readouterr()
    (folder / "metrics.json").write_text("[1, 2]")
    assert main(["card", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: corrupt {folder / 'metrics.json'}: expected a JSON object, got list\n"
