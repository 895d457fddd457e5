import json

import numpy as np
import pytest
import torch

from conftest import tiny_config
from textcnn.classifier import TextClassifier, load
from textcnn.cli import main
from textcnn.config import from_dict
from textcnn.errors import ConfigError, DataError
from textcnn.layers import private_columns
from textcnn.modality import load_datasets, modality_for
from textcnn.models import TextCNN
from textcnn.runs import train
from textcnn.training import epoch_plan


@pytest.fixture(scope="module")
def multi(sst2_slice, trec_slice, tmp_path_factory):
    data = tiny_config(sst2_slice)
    data["tasks"]["question"] = {"dataset": str(trec_slice), "loss_weight": 0.5}
    out = tmp_path_factory.mktemp("multi") / "model"
    clf = train(from_dict(data), output=out, log=lambda line: None)
    return clf, out


def test_two_heads_are_trained_and_reported(multi):
    clf, out = multi
    assert list(clf.heads) == ["sentiment", "question"]
    assert clf.heads["question"][0] == "description"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sentiment"]["test"]["accuracy"] > 0.65  # chance 0.50
    assert metrics["question"]["test"]["accuracy"] > 0.5  # majority class ~0.23
    history = json.loads((out / "history.jsonl").read_text().splitlines()[0])
    assert set(history["validation"]) == {"sentiment", "question"}
    mean = np.mean([history["validation"][h]["accuracy"] for h in ("sentiment", "question")])
    assert history["validation_accuracy"] == pytest.approx(mean)


def test_predict_answers_every_head_and_head_restricts(multi, capsys):
    clf, out = multi
    rows = clf.predict(["what is the capital of peru ?", "a gorgeous , witty film"])
    assert all(set(r) == {"sentiment", "question"} for r in rows)
    assert main(["predict", str(out), "who wrote hamlet ?", "--head", "question"]) == 0
    assert set(json.loads(capsys.readouterr().out)["predictions"]) == {"question"}


def test_round_trip_both_heads(multi):
    clf, out = multi
    loaded = TextClassifier.from_pretrained(out)
    texts = ["", "where", "a long , moving , tender film about love " * 5]
    a, b = clf.predict_proba(texts), loaded.predict_proba(texts)
    for head in ("sentiment", "question"):
        np.testing.assert_allclose(a[head], b[head], atol=1e-6)
        alone = np.concatenate([loaded.predict_proba([t])[head] for t in texts])
        np.testing.assert_allclose(alone, b[head], atol=1e-5)


def test_batches_come_from_one_task_and_sampling_rules(sst2_slice, trec_slice):
    data = tiny_config(sst2_slice)
    data["tasks"]["question"] = {"dataset": str(trec_slice)}
    config = from_dict(data)
    prep = modality_for(config).prepare(config, load_datasets(config))
    n = {t: len(prep.splits[t]["train"]) for t in prep.splits}  # 4000 and 1350
    for sampling, expected in (("proportional", np.ceil(n["sentiment"] / 50) /
                                np.ceil(n["question"] / 50)),
                               ("temperature", np.sqrt(n["sentiment"] / n["question"]))):
        config.train.sampling = sampling
        plan = epoch_plan(prep.splits, config.train, np.random.default_rng(0))
        for task, idx in plan:  # every batch is drawn from a single task's rows
            assert idx.max() < n[task]
        counts = {t: sum(1 for task, _ in plan if task == t) for t in n}
        assert counts["sentiment"] / counts["question"] == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize(
    "tasks, key",
    [
        ({"a": {"dataset": "sst2", "loss_weight": -0.5}}, "tasks.a.loss_weight"),
        ({"a": {"dataset": "sst2"}, "b": {"text_column": "text"}}, "tasks.b.dataset"),
    ],
)
def test_bad_task_configs(tasks, key):
    with pytest.raises(ConfigError, match=key):
        from_dict({"tasks": tasks})


@pytest.mark.parametrize("model", [{"private_channels": -1},
                                   {"name": "dpcnn", "private_channels": 8},
                                   {"name": "imagecnn", "private_channels": 8}])
def test_bad_private_channels(model):
    with pytest.raises(ConfigError, match="model.private_channels"):
        from_dict({"tasks": {"a": {"dataset": "sst2"}}, "model": model})


def test_task_dataset_without_its_label_column(sst2_slice, tmp_path):
    data = tiny_config(sst2_slice)
    data["tasks"]["topic"] = {"dataset": str(sst2_slice), "label_column": "topic"}
    with pytest.raises(DataError, match=r"tasks.topic.dataset: .*no column 'topic'.*"
                                        r"tasks.topic.label_column"):
        load_datasets(from_dict(data))


def test_private_filters_get_only_their_own_tasks_gradient():
    assert private_columns(1, 2, 1, 2).tolist() == [[0, 1, 2], [0, 1, 3]]
    assert private_columns(2, 1, 1, 2).tolist() == [[0, 1, 3, 4], [0, 2, 3, 5]]
    torch.manual_seed(0)
    model = TextCNN(40, {"a": 2, "b": 3}, embedding_dim=8, kernel_sizes=(2, 3), channels=3,
                    private_channels=2, dropout=0.0)
    assert [b.conv.out_channels for b in model.core.blocks] == [3 + 2 * 2] * 2
    assert model.heads.layers["a"].in_features == 2 * (3 + 2)
    with torch.no_grad():  # no filter starts dead under the ReLU
        for block in model.core.blocks:
            block.conv.bias.fill_(1.0)
    ids, lengths = torch.randint(1, 40, (6, 9)), torch.full((6,), 9)
    model(ids, lengths)["a"].sum().backward()
    for block in model.core.blocks:  # filters: 3 shared, then 2 of a's, then 2 of b's
        norms = block.conv.weight.grad.flatten(1).norm(dim=1)
        assert (norms[:5] > 0).all() and (norms[5:] == 0).all()
    with torch.no_grad():  # changing a's private filters leaves b's answers alone
        before = model(ids, lengths)
        for block in model.core.blocks:
            block.conv.weight[3:5] += 1.0
        after = model(ids, lengths)
    torch.testing.assert_close(after["b"], before["b"])
    assert not torch.allclose(after["a"], before["a"])


def test_shared_private_model_round_trip_and_backends(sst2_slice, trec_slice, tmp_path):
    data = tiny_config(sst2_slice, epochs=1)
    data["tasks"]["question"] = {"dataset": str(trec_slice)}
    data["model"]["private_channels"] = 4
    out = tmp_path / "model"
    clf = train(from_dict(data), output=out, log=lambda line: None)
    assert json.loads((out / "config.json").read_text())["model"]["private_channels"] == 4
    texts = ["", "who wrote hamlet ?", "a gorgeous , witty film", "dull " * 80]
    want = clf.predict_proba(texts)
    loaded = TextClassifier.from_pretrained(out)
    for backend in ("torch", "folded"):
        assert loaded.set_backend(backend) == backend
        got = loaded.predict_proba(texts)
        for head in ("sentiment", "question"):
            np.testing.assert_allclose(got[head], want[head], atol=1e-5)
    pytest.importorskip("onnxruntime")
    from textcnn.export import export

    export(out)
    got = load(out, backend="onnx", threads=1).predict_proba(texts)
    for head in ("sentiment", "question"):
        np.testing.assert_allclose(got[head], want[head], atol=1e-5)
