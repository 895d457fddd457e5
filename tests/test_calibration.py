"""textcnn.calibration: squared-hinge margins turned into probabilities by a folded temperature."""

import numpy as np
import pytest
import torch

from conftest import tiny_config
from textcnn import calibration
from textcnn.classifier import load
from textcnn.config import from_dict
from textcnn.models import TextCNN


def test_fit_temperature_minimises_the_validation_nll():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, 400)
    logits = 3.0 * np.eye(5)[labels] + rng.normal(0, 1.0, (400, 5))
    for scale in (0.1, 1.0, 10.0):
        t = calibration.fit_temperature(logits * scale, labels)
        # the same calibrated logits whatever the scale they came in
        assert t / scale == pytest.approx(calibration.fit_temperature(logits, labels), rel=0.03)
        best = calibration.nll(logits * scale / t, labels)
        for other in (0.9 * t, 1.1 * t):
            assert best <= calibration.nll(logits * scale / other, labels)


def test_folding_divides_one_heads_logits_cnn_and_wide_parts():
    torch.manual_seed(0)
    model = TextCNN(300, {"a": 3, "b": 4}, embedding_dim=8, channels=4, ngram_buckets=256,
                    ngram_scale=3.0).eval()
    torch.nn.init.normal_(model.wide.weight)
    ids = torch.randint(1, 300, (5, 12))
    lengths = torch.tensor([12, 9, 5, 3, 1])
    with torch.no_grad():
        before = model(ids, lengths)
        calibration.fold_temperature(model, "b", 0.25)
        after = model(ids, lengths)
    torch.testing.assert_close(after["b"], before["b"] / 0.25)
    torch.testing.assert_close(after["a"], before["a"], atol=0, rtol=0)


def test_a_squared_hinge_run_serves_calibrated_probabilities(sst2_slice, tmp_path, monkeypatch):
    from textcnn import runs
    from textcnn.heads import SquaredHingeHead

    config = tiny_config(sst2_slice, epochs=2, loss="squared_hinge")
    config["model"].update(ngram_buckets=4096, ngram_scale=4.0, ngram_l2=1e-4)
    found = {}
    fit = SquaredHingeHead.fit

    def recording(self, model, head, logits, labels):
        found[head] = calibration.fit_temperature(logits, labels)
        return fit(self, model, head, logits, labels)

    monkeypatch.setattr(SquaredHingeHead, "fit", recording)
    lines = []
    clf = runs.train(from_dict(config), output=tmp_path / "m", log=lines.append)
    t = found["sentiment"]
    assert t != 1.0 and any(f"temperature sentiment {t:.3g}" in line for line in lines)
    monkeypatch.setattr(SquaredHingeHead, "fit", lambda *a, **k: None)
    raw = runs.train(from_dict(config), output=tmp_path / "raw", log=lambda line: None)
    texts = ["a gorgeous , witty film", "dull and tired", "the plot is thin but the acting",
             "one of the year 's best"]
    margins = np.log(raw.predict_proba(texts)["sentiment"])  # logits up to a per-row constant
    want = np.exp(margins / t) / np.exp(margins / t).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(texts)["sentiment"], want, atol=1e-5)
    np.testing.assert_array_equal(want.argmax(1), margins.argmax(1))  # the same labels
    folded = load(tmp_path / "m", backend="folded", threads=1)  # in the weights: every backend
    np.testing.assert_allclose(folded.predict_proba(texts)["sentiment"], want, atol=1e-5)
