"""scripts/weights_fingerprint.py: the same config trains to the same fingerprint, and --compare
names a config whose weights changed or could not be trained."""

import importlib.util
import json
from pathlib import Path

import yaml
from test_contracts import write_dataset

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("weights_fingerprint",
                                              ROOT / "scripts" / "weights_fingerprint.py")
fingerprint = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fingerprint)


def write_config(path: Path, dataset: str, lr: float = 0.01) -> Path:
    path.write_text(yaml.safe_dump({
        "tasks": {"sentiment": {"dataset": dataset}},
        "tokenizer": {"kind": "word", "max_length": 16},
        "model": {"embedding_dim": 8, "kernel_sizes": [2, 3], "channels": 4},
        "train": {"batch_size": 10, "optimizer": "adamw", "lr": lr}}), encoding="utf-8")
    return path


def test_same_fingerprint_twice_and_compare_names_changes(tmp_path, capsys):
    data = tmp_path / "data"
    write_dataset(data / "syn", {"train": 300, "validation": 40, "test": 40})
    config = write_config(tmp_path / "tiny.yaml", "syn")
    absent = write_config(tmp_path / "absent.yaml", "nosuch")
    common = ["--data-dir", str(data), "--rows", "60", "--epochs", "2"]
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    assert fingerprint.main(["--configs", str(config), str(absent), "--output", str(first),
                             *common]) == 0
    assert fingerprint.main(["--configs", str(config), "--output", str(second), *common]) == 0
    one, two = (json.loads(p.read_text()) for p in (first, second))
    assert one["settings"] == {"rows": 60, "epochs": 2, "seed": 0}
    assert list(one["weights"]) == [str(config)] and len(one["weights"][str(config)]) == 64
    assert one["weights"] == two["weights"]
    assert one["skipped"][str(absent)].startswith("missing data: dataset 'nosuch' not found")
    capsys.readouterr()

    # --compare retrains with the stored settings: identical
    assert fingerprint.main(["--compare", str(first), "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out == "1 config(s): weights identical\n"

    # another learning rate: other weights, named
    write_config(config, "syn", lr=0.02)
    assert fingerprint.main(["--compare", str(first), "--data-dir", str(data)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{config}: weights changed ({one['weights'][str(config)][:12]} -> ")

    # a stored config that cannot be trained now is not taken as unchanged
    one["weights"][str(absent)] = "0" * 64
    first.write_text(json.dumps(one))
    write_config(config, "syn")
    assert fingerprint.main(["--compare", str(first), "--data-dir", str(data)]) == 1
    assert capsys.readouterr().out == f"{absent}: not trained this time (missing data: " \
        f"dataset 'nosuch' not found ({data}/nosuch/dataset.json))\n"


def test_bad_compare_file_and_missing_config(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"weights": {}}')
    assert fingerprint.main(["--compare", str(bad)]) == 2
    assert "not a fingerprint file" in capsys.readouterr().err
    assert fingerprint.main(["--configs", str(tmp_path / "nope.yaml")]) == 2
    assert "config not found" in capsys.readouterr().err


def test_idx_folders_are_sampled_not_cut(tmp_path):
    import numpy as np

    from textcnn.data.images import load_idx_folder, read_idx

    source = tmp_path / "idx"
    source.mkdir()
    images = np.broadcast_to(np.arange(40, dtype=np.uint8)[:, None, None], (40, 4, 4))  # i: all i
    fingerprint._write_idx(source / "t10k-images-idx3-ubyte", images)
    fingerprint._write_idx(source / "t10k-labels-idx1-ubyte", np.arange(40, dtype=np.uint8) % 10)
    first = fingerprint.sample_idx_folder(source, tmp_path / "a", rows=12, seed=0)
    again = fingerprint.sample_idx_folder(source, tmp_path / "b", rows=12, seed=0)
    picked = read_idx(first / "t10k-images-idx3-ubyte", 3)
    rows = [int(image[0, 0]) for image in picked]
    assert picked.shape == (12, 4, 4) and len(set(rows)) == 12 and rows != sorted(rows)
    assert (picked == images[rows]).all()
    assert list(read_idx(first / "t10k-labels-idx1-ubyte", 1)) == [r % 10 for r in rows]
    assert (read_idx(again / "t10k-images-idx3-ubyte", 3) == picked).all()
    assert len(load_idx_folder(first).splits["all"]) == 12  # textcnn reads the sample
