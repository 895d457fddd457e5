"""``textcnn.contrib.studies.reproduce.run_config``: a config over seeds on a test split."""

import yaml

from conftest import tiny_config
from textcnn.contrib.studies.reproduce import run_config


def test_run_config_trains_once_per_seed(sst2_slice, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(sst2_slice, epochs=1)))
    r = run_config(str(config), seeds=[0, 1], folds=10, threads=1,
                   overrides=["model.channels=8"])
    assert r["protocol"] == "test, 2 seeds" and len(r["accuracy"]) == len(r["run_seconds"]) == 2
    assert r["overrides"] == ["model.channels=8"] and r["threads"] == 1
    assert 0.5 <= r["accuracy_mean"] <= 1.0 and r["accuracy_std"] >= 0.0
    assert r["sentences_per_second"] > 0  # the first model predicting its test texts
