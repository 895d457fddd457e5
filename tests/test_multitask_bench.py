"""scripts/multitask_bench.py: which recorded runs it reuses, and single-task widths."""

import importlib.util
import json
from pathlib import Path

import yaml

from conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("multitask_bench",
                                              ROOT / "scripts" / "multitask_bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_reuses_only_runs_of_the_same_resolved_config(sst2_slice, trec_slice, tmp_path, capsys):
    data = tiny_config(sst2_slice, epochs=1)
    data["tasks"]["question"] = {"dataset": str(trec_slice)}
    data["model"]["private_channels"] = 4
    config, out = tmp_path / "multi.yaml", tmp_path / "runs.jsonl"
    config.write_text(yaml.safe_dump(data))
    args = ["--config", str(config), "--seeds", "0", "--variants", "multi", "sentiment",
            "--threads", "1", "--output", str(out)]

    def rows():
        return [json.loads(line) for line in out.read_text().splitlines()]

    bench.main(args)
    multi, single = rows()
    assert set(multi["test_accuracy"]) == {"sentiment", "question"}
    assert multi["config"]["model"]["private_channels"] == 4
    # alone, a task's private filters are ordinary ones: the width its head reads in the multi
    assert (single["config"]["model"]["channels"], single["config"]["model"]["private_channels"]) \
        == (16 + 4, 0)
    assert single["bytes"] > 0 and 0.5 <= single["test_accuracy"]["sentiment"] <= 1.0
    table = capsys.readouterr().out
    assert "| multi | sentiment | 1 |" in table and "| sentiment | sentiment | 1 |" in table

    bench.main(args)  # nothing new to train
    assert len(rows()) == 2
    data["model"]["dropout"] = 0.2  # an edited config file is a new setting
    config.write_text(yaml.safe_dump(data))
    bench.main([*args[:6], *args[7:]])  # the multi-task variant only
    assert len(rows()) == 3 and rows()[2]["config"]["model"]["dropout"] == 0.2
