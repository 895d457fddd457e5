"""Names the docstring examples in textcnn/ use (pytest --doctest-modules textcnn).

``model_dir`` is a tiny text model trained once on a random sample of SST-2 (read through
``$TEXTCNN_DATA_DIR``), ``sst2_slice`` that sample, ``tmp_dir`` an empty folder; the
distillation examples also get ``bert_dir`` (a tiny random BERT folder) and ``teacher_dir``
(it, fine-tuned on the sample for one epoch).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent


def _test_helper(name: str):
    """The module ``tests/<name>.py`` (test helpers live beside the tests, outside the wheel)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _sample_sst2(out: Path) -> Path:
    data = Path(os.environ.get("TEXTCNN_DATA_DIR", ROOT.parent / "shared" / "data")) / "sst2"
    if not (data / "dataset.json").is_file():
        pytest.fail(f"benchmark data not found at {data.parent}: set TEXTCNN_DATA_DIR")
    rng = random.Random(0)
    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 800), ("validation", 100), ("test", 100)):
        with open(data / f"{split}.jsonl", encoding="utf-8") as fh:
            rows = [line for line in fh if line.strip()]
        (out / f"{split}.jsonl").write_text("".join(rng.sample(rows, n)), encoding="utf-8")
    (out / "dataset.json").write_text((data / "dataset.json").read_text(encoding="utf-8"))
    return out


@pytest.fixture(scope="session")
def doctest_model(tmp_path_factory) -> tuple[Path, Path]:
    from textcnn.config import from_dict
    from textcnn.runs import train

    root = tmp_path_factory.mktemp("doctest")
    sample = _sample_sst2(root / "sst2-sample")
    config = from_dict({
        "tasks": {"sentiment": {"dataset": str(sample)}},
        "tokenizer": {"kind": "word", "max_length": 64},
        "model": {"embedding_dim": 16, "kernel_sizes": [3, 4, 5], "channels": 8},
        "train": {"epochs": 1, "seed": 0, "threads": 1},
    })
    train(config, output=root / "model", log=lambda line: None)
    return sample, root / "model"


@pytest.fixture(scope="session")
def doctest_teacher(doctest_model, tmp_path_factory) -> tuple[Path, Path]:
    from textcnn.config import from_dict
    from textcnn.contrib.distill.teacher import teach

    tiny_bert = _test_helper("tiny_bert").tiny_bert

    sample, _ = doctest_model
    root = tmp_path_factory.mktemp("teacher")
    lines = (sample / "train.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    bert = tiny_bert(root / "bert", texts)
    config = from_dict({"tasks": {"sentiment": {"dataset": str(sample)}},
                        "teacher": {"pretrained": str(bert), "epochs": 1, "max_length": 16},
                        "train": {"threads": 1}})
    teach(config, root / "teachers", log=lambda line: None)
    return bert, root / "teachers" / "sentiment"


@pytest.fixture(autouse=True)
def _doctest_names(request, doctest_namespace, tmp_path):
    if type(request.node).__name__ != "DoctestItem":
        return
    sample, model_dir = request.getfixturevalue("doctest_model")
    doctest_namespace.update(np=np, model_dir=model_dir, sst2_slice=sample, tmp_dir=tmp_path,
                             json=json)
    if request.node.name.startswith("textcnn.contrib.distill"):
        bert, teacher = request.getfixturevalue("doctest_teacher")
        doctest_namespace.update(bert_dir=bert, teacher_dir=teacher)
