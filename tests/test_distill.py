"""Distillation: teacher fine-tuning, the logit cache (a second student run never calls the
teacher), the loss mix, augmentation, config errors and the `teach` verb, on a tiny random BERT
made in the test (no download) and a small synthetic task it can learn."""

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_bert import tiny_bert

from textcnn.classifier import load
from textcnn.cli import main
from textcnn.config import from_dict
from textcnn.contrib.distill.augment import MASK, augment, neighbour_table, spans
from textcnn.contrib.distill.cache import LogitCache, text_keys
from textcnn.contrib.distill.loss import distill_loss
from textcnn.contrib.distill.student import extra_texts
from textcnn.contrib.distill.teacher import Teacher, teach
from textcnn.errors import ConfigError
from textcnn.metrics import head_loss
from textcnn.runs import train

FILLER = ["the", "a", "film", "story", "plot", "cast", "scene", "with", "some", "of", "and",
          "is", "was", "it", "this", "that"]
CUES = {"sentiment": [["awful", "dull", "poor"], ["great", "fine", "superb"]],
        "topic": [["goal", "match", "team"], ["vote", "law", "party"], ["chip", "code", "data"]]}


def load_script(name):
    """The module ``scripts/<name>.py``."""
    spec = importlib.util.spec_from_file_location(
        f"{name}_script", Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_task(folder, cues, sizes=(240, 60, 60), seed=0):
    """A task a tiny model learns: each text holds a cue word of its class among filler."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    names = [f"c{i}" for i in range(len(cues))]
    for split, n in zip(("train", "validation", "test"), sizes):
        rows = []
        for _ in range(n):
            label = rng.randrange(len(cues))
            words = rng.sample(FILLER, rng.randint(2, 4)) + [rng.choice(cues[label])]
            rng.shuffle(words)
            rows.append({"text": " ".join(words), "label": label})
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "dataset.json").write_text(json.dumps(
        {"name": folder.name, "text_column": "text", "label_column": "label",
         "label_names": names}))
    return folder


def config_data(tasks, bert, cache=None, teachers=None, **distill):
    data = {"tasks": {name: {"dataset": str(path)} for name, path in tasks.items()},
            "tokenizer": {"kind": "word", "max_length": 32},
            "model": {"embedding_dim": 16, "kernel_sizes": [2, 3], "channels": 8},
            "train": {"epochs": 3, "threads": 1, "lr": 0.01, "patience": 3},
            "teacher": {"pretrained": str(bert), "epochs": 4, "lr": 5e-3, "batch_size": 16,
                        "max_length": 16, "warmup": 0.1}}
    if teachers:
        data["distill"] = {"teachers": {t: str(p) for t, p in teachers.items()},
                           "cache": str(cache), **distill}
    return data


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Two synthetic tasks, a tiny BERT and one fine-tuned teacher per task."""
    root = tmp_path_factory.mktemp("distill")
    tasks = {name: write_task(root / name, cues, seed=i)
             for i, (name, cues) in enumerate(CUES.items())}
    bert = tiny_bert(root / "bert", [w for cues in CUES.values() for c in cues for w in c]
                     + FILLER, hidden=32)
    infos = teach(from_dict(config_data(tasks, bert)), root / "teachers", log=lambda line: None)
    return root, tasks, bert, infos


def test_teacher_learns_the_task_and_keeps_the_best_validation_epoch(setup):
    root, _, _, infos = setup
    for task, info in infos.items():
        accuracies = [row["validation"]["accuracy"] for row in info["history"]]
        assert len(accuracies) == 4
        assert info["best_epoch"] == 1 + int(np.argmax(accuracies))
        assert info["metrics"]["validation"]["accuracy"] == max(accuracies)
        assert info["metrics"]["test"]["accuracy"] >= 0.9, (task, info["metrics"])
        teacher = Teacher(root / "teachers" / task)
        assert teacher.labels == [f"c{i}" for i in range(len(CUES[task]))]
        assert json.loads((root / "teachers" / task / "teacher.json").read_text())[
            "best_epoch"] == info["best_epoch"]


def test_teacher_identity_follows_the_weights(setup):
    root = setup[0]
    a, b = Teacher(root / "teachers" / "sentiment"), Teacher(root / "teachers" / "topic")
    assert a.identity != b.identity
    assert a.identity == Teacher(root / "teachers" / "sentiment").identity


def test_second_student_run_never_calls_the_teacher(setup, tmp_path, monkeypatch):
    root, tasks, bert, _ = setup
    teachers = {t: root / "teachers" / t for t in tasks}
    data = config_data(tasks, bert, tmp_path / "cache", teachers, augment=2)
    logs = []
    first = train(from_dict(data), output=tmp_path / "one", log=logs.append)
    assert not any(", 0 scored now" in line for line in logs), logs

    def refuse(self, texts):
        raise AssertionError("the teacher was called although every text is cached")

    monkeypatch.setattr(Teacher, "logits", refuse)
    logs.clear()
    second = train(from_dict(data), output=tmp_path / "two", log=logs.append)
    assert any(", 0 scored now" in line for line in logs)
    texts = ["the great film", "a vote on the law"]
    for head in tasks:  # the same cached targets, the same seed: the same student
        np.testing.assert_allclose(first.predict_proba(texts, head=head)[head],
                                   second.predict_proba(texts, head=head)[head], atol=1e-6)
    data["train"]["seed"] = 1  # another student seed reads the same augmented texts
    logs.clear()
    train(from_dict(data), output=tmp_path / "three", log=logs.append)
    assert any(", 0 scored now" in line for line in logs)


def test_student_folder_is_an_ordinary_model_folder(setup, tmp_path):
    root, tasks, bert, _ = setup
    more = tmp_path / "more.txt"
    more.write_text("a superb story\n\nthe poor cast\n")
    data = config_data({"sentiment": tasks["sentiment"]}, bert, tmp_path / "cache",
                       {"sentiment": root / "teachers" / "sentiment"}, augment=2, spans=1,
                       unlabeled=str(more))
    logs = []
    train(from_dict(data), output=tmp_path / "student", log=logs.append)
    train_texts = [r["text"] for r in read_rows(tasks["sentiment"] / "train.jsonl")]
    copies = augment(train_texts, 2, seed=0)
    added = len(copies) + len(spans(train_texts, 1, 0, copies)) + 2  # + the 2 unlabeled lines
    assert any(f"sentiment: +{added} texts for its teacher" in line for line in logs), logs
    torch_clf, folded = (load(tmp_path / "student", backend=b) for b in ("torch", "folded"))
    texts = ["the superb cast", "a dull plot"]
    np.testing.assert_allclose(torch_clf.predict_proba(texts)["sentiment"],
                               folded.predict_proba(texts)["sentiment"], atol=1e-5)
    metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())
    assert metrics["sentiment"]["test"]["accuracy"] >= 0.9


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_soft_targets_alone_teach_the_teachers_decisions(setup, tmp_path, monkeypatch):
    """With hard_weight 0 a student learns what its teacher says: here a cached teacher that
    inverts every label (and a validation split that agrees with it), never called."""
    root, tasks, bert, _ = setup
    teacher = Teacher(root / "teachers" / "sentiment")
    rows = read_rows(tasks["sentiment"] / "train.jsonl")
    inverted = {r["text"]: [4.0, -4.0] if r["label"] else [-4.0, 4.0] for r in rows}
    LogitCache(tmp_path / "cache", teacher.identity).logits(
        [r["text"] for r in rows], lambda texts: np.array([inverted[t] for t in texts]))
    monkeypatch.setattr(Teacher, "logits", lambda self, t: pytest.fail("teacher called"))
    flipped = tmp_path / "flipped"
    flipped.mkdir()
    for name in ("train.jsonl", "test.jsonl", "dataset.json"):
        (flipped / name).write_text((tasks["sentiment"] / name).read_text())
    (flipped / "validation.jsonl").write_text("".join(
        json.dumps({**r, "label": 1 - r["label"]}) + "\n"
        for r in read_rows(tasks["sentiment"] / "validation.jsonl")))
    test = read_rows(tasks["sentiment"] / "test.jsonl")
    accuracy = {}
    for hard, soft, dataset in ((1.0, 0.0, tasks["sentiment"]), (0.0, 1.0, flipped)):
        data = config_data({"sentiment": dataset}, bert, tmp_path / "cache",
                           {"sentiment": root / "teachers" / "sentiment"}, loss="mse",
                           hard_weight=hard, soft_weight=soft)
        data["train"]["epochs"] = 6
        clf = train(from_dict(data), log=lambda line: None)
        predicted = clf.predict([r["text"] for r in test])
        accuracy[soft] = np.mean([p["sentiment"][0]["label"] == f"c{r['label']}"
                                  for p, r in zip(predicted, test)])
    assert accuracy[0.0] >= 0.9 and accuracy[1.0] <= 0.1, accuracy


def test_distill_loss_mixes_hard_and_soft_parts():
    torch.manual_seed(0)
    logits, teacher = torch.randn(5, 3), torch.randn(5, 3)
    labels = torch.tensor([0, 2, -1, 1, -1])
    hard = head_loss(logits[labels >= 0], labels[labels >= 0], reduction="sum")
    t = 3.0
    p = torch.softmax(teacher / t, 1)
    kl = (p * (p.log() - torch.log_softmax(logits / t, 1))).sum() * t * t
    mse = ((logits - teacher) ** 2).mean(1).sum()
    got = distill_loss(logits, labels, teacher, "kl", t, hard_weight=0.3, soft_weight=0.7)
    assert got.item() == pytest.approx((0.3 * hard + 0.7 * kl).item(), rel=1e-5)
    got = distill_loss(logits, labels, teacher, "mse", t, hard_weight=1.0, soft_weight=2.0)
    assert got.item() == pytest.approx((hard + 2 * mse).item(), rel=1e-5)
    assert distill_loss(logits, labels, logits, "kl", t, 0.0, 1.0).item() == pytest.approx(
        0.0, abs=1e-6)  # the student already says what the teacher says


def test_augment_masks_cuts_and_never_repeats():
    texts = ["one two three four five six seven eight", "nine ten eleven twelve"]
    new = augment(texts, copies=20, mask_prob=0.3, ngram_prob=0.5, seed=3)
    assert new == augment(texts, copies=20, mask_prob=0.3, ngram_prob=0.5, seed=3)
    assert len(set(new)) == len(new) and not set(new) & set(texts)
    assert any(MASK in t for t in new) and any(len(t.split()) <= 5 for t in new)
    assert augment(texts, copies=20, mask_prob=0.0, ngram_prob=0.0) == []  # only copies


def test_spans_are_unmasked_inner_runs_that_never_repeat():
    texts = ["one two three four five six seven eight", "nine ten eleven", "one two three four"]
    new = spans(texts, copies=30, seed=3, exclude=["one two"])
    assert new == spans(texts, copies=30, seed=3, exclude=["one two"])
    assert len(set(new)) == len(new) and not set(new) & {*texts, "one two"}
    for span in new:  # 2 to n - 1 words, contiguous, of a text of 4 or more words
        source = next(t for t in (texts[0], texts[2]) if f" {span} " in f" {t} ")
        assert 2 <= len(span.split()) < len(source.split())
    assert {len(span.split()) for span in new} == set(range(2, 8))
    assert "two three four" in new and spans(texts[1:2], copies=30) == []


def test_augment_swaps_words_for_their_neighbours_only():
    texts = ["one two three four five six seven eight", "nine ten Eleven twelve"]
    near = {"two": ["deux"], "five": ["cinq", "fuenf"], "eleven": ["onze"]}
    plain = augment(texts, copies=20, mask_prob=0.3, ngram_prob=0.5, seed=3)
    assert augment(texts, 20, 0.3, 0.5, 3, swap_prob=0.0, neighbours=near) == plain
    new = augment(texts, copies=20, mask_prob=0.0, ngram_prob=0.0, seed=3, swap_prob=0.6,
                  neighbours=near)
    for text in new:
        source = texts[len(text.split()) == 4]
        for word, was in zip(text.split(), source.split()):
            assert word == was or word in near[was.lower()]
    assert {"deux", "cinq", "fuenf", "onze"} <= {w for text in new for w in text.split()}


def test_neighbours_come_from_the_pretrained_vectors(tmp_path):
    vectors = {"good": [1, 0.1, 0], "great": [0.9, 0.2, 0], "bad": [-1, 0, 0.1],
               "awful": [-0.9, 0, 0.2], "film": [0, 0, 1]}
    (tmp_path / "v.txt").write_text("".join(f"{w} {' '.join(map(str, v))}\n"
                                            for w, v in vectors.items()))
    vocab = {w: i for i, w in enumerate(vectors)}
    table = neighbour_table(["Good", "bad", "unknown"], vocab, np.array(list(vectors.values())),
                            k=2)
    assert table == {"good": ["great", "film"], "bad": ["awful", "film"]}
    config = from_dict({"tasks": {"s": {"dataset": "sst2"}},
                        "model": {"pretrained": str(tmp_path / "v.txt"), "embedding_dim": 3},
                        "distill": {"teachers": {"s": "x"}, "augment": 4, "mask_prob": 0.0,
                                    "ngram_prob": 0.0, "swap_prob": 0.99, "neighbours": 1}})
    extra = extra_texts(config, ["a good film", "bad film"])  # a file's: among these words
    assert "a film bad" in extra and "film film" in extra  # good -> film -> bad -> film
    assert {w for text in extra for w in text.split()} <= {"a", "good", "film", "bad"}


def test_cache_keys_texts_and_scores_each_text_once(tmp_path):
    calls = []

    def score(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    cache = LogitCache(tmp_path, "t")
    logits, scored = cache.logits(["aa", "b", "aa"], score)
    assert scored == 2 and calls == [["aa", "b"]] and logits[:, 0].tolist() == [2, 1, 2]
    logits, scored = cache.logits(["ccc", "b"], score)
    assert scored == 1 and calls[-1] == ["ccc"] and logits[:, 0].tolist() == [3, 1]
    assert len(cache.read()[0]) == 3 and len(set(text_keys(["aa", "b", "ccc"]))) == 3
    assert LogitCache(tmp_path, "other").logits(["aa"], score)[1] == 1  # keyed by teacher too


@pytest.mark.parametrize("distill, key", [
    ({"teachers": {"nope": "x"}}, "distill.teachers.nope"),
    ({"teachers": {"s": "x"}, "loss": "l1"}, "distill.loss"),
    ({"teachers": {"s": "x"}, "hard_weight": 0.0, "soft_weight": 0.0}, "distill.soft_weight"),
    ({"teachers": ["x"]}, "distill.teachers"),
    ({"temperature": 0.0}, "distill.temperature"),
    ({"teachers": {"s": "x"}, "train_loss": "squared_hinge"}, "train.loss"),
    ({"mask_prob": 0.5, "swap_prob": 0.6}, "distill.swap_prob"),
    ({"teachers": {"s": "x"}, "augment": 2, "swap_prob": 0.1}, "distill.swap_prob"),
])
def test_config_errors_name_the_key(distill, key):
    train = {"loss": distill.pop("train_loss")} if "train_loss" in distill else {}
    with pytest.raises(ConfigError, match=f"{key}'"):
        from_dict({"tasks": {"s": {"dataset": "sst2"}}, "distill": distill, "train": train})


def test_teach_verb_writes_a_teacher_and_errors_name_the_key(setup, tmp_path, capsys):
    import yaml

    _, tasks, bert, _ = setup
    data = config_data({"sentiment": tasks["sentiment"]}, bert)
    data["teacher"]["epochs"] = 1
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["teach", str(path), "--output", str(tmp_path / "t")]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["task"] == "sentiment" and row["best_epoch"] == 1
    assert Teacher(tmp_path / "t" / "sentiment").labels == ["c0", "c1"]
    assert main(["teach", str(path), "--set", "teacher.pretrained=''", "--output",
                 str(tmp_path / "u")]) == 2
    assert "'teacher.pretrained'" in capsys.readouterr().err


def test_distill_script_records_every_step_and_reuses_teacher_and_cache(setup, tmp_path):
    """scripts/distill.py on a one-task config: teacher, scoring, both students and the speed
    step each leave a row; a second run reuses the teacher folder and every cached logit."""
    import yaml

    module = load_script("distill")
    root, tasks, bert, _ = setup
    data = config_data({"topic": tasks["topic"]}, bert, tmp_path / "unused",
                       {"topic": tmp_path / "unused"}, augment=1)
    config = tmp_path / "topic-distill.yaml"
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    for _ in range(2):
        module.main(["--config", str(config), "--out", str(out), "--seeds", "0",
                     "--set", "teacher.epochs=1"])
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    steps = [row["step"] for row in rows]
    assert steps == ["teacher", "scoring", "student distilled", "speed", "student alone",
                     "scoring", "student distilled", "speed", "student alone"]
    first, second = (row for row in rows if row["step"] == "scoring")
    assert first["texts"] == second["texts"] > 144 and first["scored"] > 144
    assert second["scored"] == 0
    assert (out / "teacher" / "topic" / "teacher.json").is_file()
    speed = next(row for row in rows if row["step"] == "speed")
    assert speed["teacher_per_s"] > 0 and speed["student_per_s"] > 0
    for row in rows:
        if row["step"].startswith("student"):
            assert 0 <= row["metrics"]["test"]["accuracy"] <= 1
    module.main(["--config", str(config), "--out", str(out), "--seeds", "0", "--speed",
                 "--backend", "torch"])
    again = json.loads((out / "results.jsonl").read_text().splitlines()[-1])
    assert again["step"] == "speed" and again["texts"] == speed["texts"]
    assert (speed["student_backend"], again["student_backend"]) == ("folded", "torch")
    table = module.report([str(out)]).splitlines()
    assert len(table) == 3 and table[2].startswith("| out | ")
    cells = [cell.strip() for cell in table[2].split("|")[1:-1]]
    alone, distilled = (next(r for r in rows if r["step"] == f"student {k}")["metrics"]["test"]
                        ["accuracy"] for k in ("alone", "distilled"))
    assert cells[4] == f"{100 * alone:.1f} (1)" and cells[5] == f"{100 * distilled:.1f} (1)"
    assert cells[6] == f"{100 * (distilled - alone):+.1f}"
    walls = ([r["wall_seconds"] for r in rows if r["step"] == "teacher"]
             + [first["wall_seconds"]] + [r["wall_seconds"] for r in rows[-3:] if "seed" in r])
    assert cells[8] == f"{sum(walls) / 60:.0f}"
    assert cells[7].startswith(f"{again['teacher_per_s']:,.0f} / ")  # the latest speed row
    both = config_data(tasks, bert, tmp_path, {name: tmp_path for name in tasks})
    config.write_text(yaml.safe_dump(both))
    with pytest.raises(SystemExit, match="one task"):
        module.main(["--config", str(config), "--out", str(out)])


def test_unlabeled_sentences_script_keeps_clean_body_sentences(tmp_path, capsys):
    """scripts/unlabeled_sentences.py: mail headers, quoted lines and noisy or short sentences go;
    the rest are tokenized as SST is, deduplicated, and --count of them written, the same for
    the same --seed."""
    module = load_script("unlabeled_sentences")
    post = ("From: someone <a@b.org>\nSubject: the new film is great.\n\n"
            "> quoted text that is long enough to count here.\n"
            "I really didn't like the ending of that film at all. Too short.\n"
            "Mail me at a@b.org for the whole list of the films please. "
            "The second act, however, was a real delight to watch!")
    folder = tmp_path / "posts"
    folder.mkdir()
    plain = "A first paragraph that has no header at all.\n\nAnd then the 1993 second one."
    (folder / "train.jsonl").write_text("".join(json.dumps({"text": text, "label": 0}) + "\n"
                                                for text in (post, post, plain)))
    (folder / "dataset.json").write_text(json.dumps({"label_names": ["a", "b"]}))
    kept = {"i really did n't like the ending of that film at all .",
            "the second act , however , was a real delight to watch !",
            "a first paragraph that has no header at all ."}
    outs = []
    for name, count in (("all", 10), ("again", 10), ("one", 1)):
        out = tmp_path / f"{name}.txt"
        module.main([str(folder), "--count", str(count), "--out", str(out)])
        outs.append(out.read_text().splitlines())
    assert set(outs[0]) == kept and len(outs[0]) == 3
    assert outs[1] == outs[0] and outs[2] == outs[0][:1]
    assert "3 sentences found, 1 written" in capsys.readouterr().out
