"""The numpy metrics equal scikit-learn's on the same predictions."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from textcnn.metrics import classification_metrics, multilabel_scores


@pytest.mark.parametrize("seed", range(5))
def test_single_label_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=60)
    logits = rng.normal(size=(60, 6))  # classes 4 and 5 never true; some never predicted
    logits[:, 5] -= 10
    pred = logits.argmax(axis=1)
    got = classification_metrics(labels, logits)
    assert got["accuracy"] == round(accuracy_score(labels, pred), 6)
    assert got["macro_f1"] == round(f1_score(labels, pred, average="macro", zero_division=0), 6)


@pytest.mark.parametrize("seed", range(5))
def test_multilabel_scores_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random((40, 5)) < 0.3
    labels[:, 4] = False  # a label never true ...
    predicted = rng.random((40, 5)) < 0.3
    predicted[:, 4] = False  # ... and never predicted counts 0, as scikit-learn's zero_division=0
    got = multilabel_scores(labels, predicted)
    assert got["subset_accuracy"] == round(accuracy_score(labels, predicted), 6)
    for average in ("micro", "macro"):
        want = f1_score(labels, predicted, average=average, zero_division=0)
        assert got[f"{average}_f1"] == round(want, 6)


def test_confusion_counts_match_sklearn(tmp_path, monkeypatch):
    import textcnn.metrics as metrics

    seen = {}

    class FakeAxes:
        def imshow(self, cm, **_):
            seen["cm"] = cm

        def __getattr__(self, name):
            return lambda *a, **k: None

    class FakePlt:
        def subplots(self, **_):
            return type("F", (), {"tight_layout": lambda s: None,
                                  "savefig": lambda s, *a, **k: None})(), FakeAxes()

        def close(self, fig):
            pass

    monkeypatch.setattr(metrics, "pyplot", lambda: FakePlt())
    labels, pred = np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 1, 1])
    assert metrics.plot_confusion(labels, pred, ["a", "b", "c", "d"], tmp_path / "c.png")
    np.testing.assert_array_equal(seen["cm"], confusion_matrix(labels, pred, labels=[0, 1, 2, 3]))
