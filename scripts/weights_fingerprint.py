"""Fingerprint the weights that configs train to, so a change of the code that should not change
training can be shown not to.

Each config is trained briefly and deterministically: on a shuffled random sample of each text
dataset (``--rows`` training rows, a quarter of that from every other split, drawn with
``random.Random(--seed)``; never "the first N"), for ``--epochs`` epochs, one thread, on the CPU,
with ``train.seed`` set to ``--seed``. The fingerprint of a config is the SHA-256 of the
``model.safetensors`` it writes. Datasets are read from ``--data-dir`` or ``$TEXTCNN_DATA_DIR``
(``<dir>/<name>/dataset.json``); a config whose data is not there, or that cannot be trained here
(e.g. pretrained vectors or a distillation teacher not on this machine), is reported and skipped,
never downloaded. An image dataset that is a folder of IDX files (``mnist``) is sampled the
same way, ``--rows`` images per file; the bundled ``digits`` (1,797 images) is used whole.

Record the fingerprints before a change, then compare after it::

    TEXTCNN_DATA_DIR=/path/to/data python scripts/weights_fingerprint.py \
        --configs configs/kim2014/sst2.yaml configs/kim2014/trec.yaml --output before.json
    TEXTCNN_DATA_DIR=/path/to/data python scripts/weights_fingerprint.py --compare before.json

``--compare F`` retrains the configs of ``F`` (or ``--configs``) with ``F``'s settings and exits
1 naming every config whose weights changed or that could not be trained this time; 0 when all
are identical. ``--configs all`` means every YAML file under ``configs/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("rows", "epochs", "seed")


class Skipped(Exception):
    """A config that cannot be fingerprinted here (the reason is the message)."""


def config_name(path: str | Path) -> str:
    """``kim2014/sst2`` for ``configs/kim2014/sst2.yaml``; other paths as given."""
    path = Path(path)
    try:
        return path.resolve().relative_to(ROOT / "configs").with_suffix("").as_posix()
    except ValueError:
        return str(path)


def config_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        return path
    return ROOT / "configs" / f"{name}.yaml"


def expand(configs: list[str]) -> list[Path]:
    if configs == ["all"]:
        return sorted((ROOT / "configs").rglob("*.yaml"))
    return [config_path(c) for c in configs]


def _sample_lines(path: Path, n: int, rng: random.Random) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        lines = [line if line.endswith("\n") else line + "\n" for line in fh if line.strip()]
    return rng.sample(lines, min(n, len(lines)))


def sample_dataset(source: Path, out: Path, rows: int, seed: int) -> Path:
    """A copy of the dataset folder ``source`` holding a shuffled random sample of each split:
    ``rows`` training rows (or of an ``all`` split), ``rows // 4`` of any other."""
    meta = json.loads((source / "dataset.json").read_text(encoding="utf-8"))
    rng = random.Random(seed)
    out.mkdir(parents=True)
    sizes = {}
    for split in meta.get("splits") or {}:
        path = source / f"{split}.jsonl"
        if not path.is_file():
            raise Skipped(f"{source}: split '{split}' has no {path.name} (only JSON-lines "
                          "dataset folders are sampled)")
        lines = _sample_lines(path, rows if split in ("train", "all") else max(1, rows // 4), rng)
        (out / path.name).write_text("".join(lines), encoding="utf-8")
        sizes[split] = len(lines)
    (out / "dataset.json").write_text(json.dumps({**meta, "splits": sizes}), encoding="utf-8")
    return out


def _write_idx(path: Path, array) -> None:
    """``array`` (uint8) as an uncompressed IDX file."""
    import numpy as np

    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(array, np.uint8).tobytes())


def sample_idx_folder(source: Path, out: Path, rows: int, seed: int) -> Path:
    """A copy of the IDX folder ``source`` (image datasets) holding ``rows`` randomly drawn
    images of each images/labels pair, in shuffled order."""
    import numpy as np

    from textcnn.data.images import read_idx

    rng = random.Random(seed)
    out.mkdir(parents=True)
    for images_path in sorted(source.glob("*-images?idx3-ubyte*")):
        prefix = images_path.name.split("-images")[0]
        labels_path = next(iter(sorted(source.glob(f"{prefix}-labels?idx1-ubyte*"))), None)
        images = read_idx(images_path, 3)
        if labels_path is None or images.dtype != np.uint8:
            raise Skipped(f"{source}: {images_path.name} is not a uint8 image file with labels")
        labels = read_idx(labels_path, 1)
        keep = rng.sample(range(len(images)), min(rows, len(images)))
        _write_idx(out / f"{prefix}-images-idx3-ubyte", images[keep])
        _write_idx(out / f"{prefix}-labels-idx1-ubyte", labels[keep])
    if (source / "dataset.json").is_file():
        (out / "dataset.json").write_bytes((source / "dataset.json").read_bytes())
    return out


def _local_images(spec: str, data_dir: Path | None) -> Path | None:
    """The IDX folder an image task names; None for the bundled ``digits`` (used whole)."""
    from textcnn.data.images import MNIST_FOLDER

    if spec == "digits":
        return None
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if spec in ("mnist", MNIST_FOLDER) and data_dir is not None and \
            (data_dir / MNIST_FOLDER).is_dir():
        return data_dir / MNIST_FOLDER
    where = f"{data_dir}/{MNIST_FOLDER}" if data_dir else "no data directory (set --data-dir " \
                                                          "or $TEXTCNN_DATA_DIR)"
    raise Skipped(f"missing data: image dataset '{spec}' not found ({where})")


def _sampled(config, rows: int, seed: int, data_dir: Path | None, work: Path) -> None:
    """Point every task of ``config`` at a sample of its dataset written under ``work``."""
    for name, task in config.tasks.items():
        out = work / "data" / name
        if config.model.input_kind == "text":
            task.dataset = str(sample_dataset(_local_dataset(task.dataset, data_dir), out,
                                              rows, seed))
        elif (source := _local_images(task.dataset, data_dir)) is not None:
            task.dataset = str(sample_idx_folder(source, out, rows, seed))


def _local_dataset(spec: str, data_dir: Path | None) -> Path:
    path = Path(spec).expanduser()
    if (path / "dataset.json").is_file():
        return path
    if data_dir is not None and (data_dir / spec / "dataset.json").is_file():
        return data_dir / spec
    where = f"{data_dir}/{spec}/dataset.json" if data_dir else "no data directory (set " \
                                                               "--data-dir or $TEXTCNN_DATA_DIR)"
    raise Skipped(f"missing data: dataset '{spec}' not found ({where})")


def fingerprint(path: Path, rows: int, epochs: int, seed: int, data_dir: Path | None,
                work: Path) -> str:
    """Train the config at ``path`` as the module docstring says; the SHA-256 of its weights."""
    from textcnn.config import load_config
    from textcnn.errors import TextCNNError
    from textcnn.runs import train

    overrides = [f"train.epochs={epochs}", f"train.seed={seed}", "train.threads=1",
                 "train.device=cpu", "train.min_steps=0", "train.time_budget=0"]
    try:
        config = load_config(path, overrides)
        _sampled(config, rows, seed, data_dir, work)
        train(config, data_dir, work / "model", log=lambda line: None)
    except TextCNNError as exc:
        raise Skipped(str(exc).splitlines()[0]) from None
    return hashlib.sha256((work / "model" / "model.safetensors").read_bytes()).hexdigest()


def fingerprints(paths: list[Path], rows: int, epochs: int, seed: int,
                 data_dir: Path | None) -> tuple[dict[str, str], dict[str, str]]:
    """({config: sha256}, {config: why it was skipped}), one config at a time."""
    weights, skipped = {}, {}
    for path in paths:
        name = config_name(path)
        with tempfile.TemporaryDirectory(prefix="fingerprint-") as tmp:
            try:
                weights[name] = fingerprint(path, rows, epochs, seed, data_dir, Path(tmp))
                print(f"{name}: {weights[name]}", file=sys.stderr)
            except Skipped as exc:
                skipped[name] = str(exc)
                print(f"{name}: skipped: {exc}", file=sys.stderr)
    return weights, skipped


def compare(stored: dict, weights: dict[str, str], skipped: dict[str, str]) -> list[str]:
    """One line per config of ``stored`` whose weights differ now or that was not trained."""
    problems = []
    for name, before in stored["weights"].items():
        if name in skipped:
            problems.append(f"{name}: not trained this time ({skipped[name]})")
        elif name not in weights:
            problems.append(f"{name}: not trained this time (not among --configs)")
        elif weights[name] != before:
            problems.append(f"{name}: weights changed ({before[:12]} -> {weights[name][:12]})")
    return problems


def read_fingerprints(path: str) -> dict | str:
    """An earlier ``--output`` file, or what is wrong with it."""
    try:
        stored = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"cannot be read ({exc})"
    if not isinstance(stored, dict) or not isinstance(stored.get("weights"), dict) or \
            not isinstance(stored.get("settings"), dict) or \
            any(not isinstance(stored["settings"].get(k), int) for k in SETTINGS):
        return f"not a fingerprint file (needs 'weights' and 'settings' with {', '.join(SETTINGS)})"
    return stored


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--configs", nargs="+", help="config files or names (kim2014/sst2), or all")
    ap.add_argument("--rows", type=int, help="training rows sampled per dataset (default 200)")
    ap.add_argument("--epochs", type=int, help="epochs of training (default 1)")
    ap.add_argument("--seed", type=int, help="sampling and training seed (default 0)")
    ap.add_argument("--data-dir", help="local data directory (default: $TEXTCNN_DATA_DIR)")
    ap.add_argument("--output", help="write {settings, weights, skipped} as JSON here")
    ap.add_argument("--compare", metavar="F", help="an earlier --output: exit 1 naming every "
                                                   "config whose weights changed")
    args = ap.parse_args(argv)
    stored = None
    if args.compare:
        stored = read_fingerprints(args.compare)
        if isinstance(stored, str):
            print(f"error: --compare {args.compare}: {stored}", file=sys.stderr)
            return 2
    base = stored["settings"] if stored else {"rows": 200, "epochs": 1, "seed": 0}
    settings = {k: getattr(args, k) if getattr(args, k) is not None else base[k]
                for k in SETTINGS}
    names = args.configs or (list(stored["weights"]) if stored else None)
    if not names:
        print("error: give --configs (or --compare F)", file=sys.stderr)
        return 2
    missing = [str(p) for p in expand(names) if not p.is_file()]
    if missing:
        print(f"error: config not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    data_dir = args.data_dir or os.environ.get("TEXTCNN_DATA_DIR")
    weights, skipped = fingerprints(expand(names), settings["rows"], settings["epochs"],
                                    settings["seed"], Path(data_dir) if data_dir else None)
    if args.output:
        Path(args.output).write_text(json.dumps(
            {"settings": settings, "weights": weights, "skipped": skipped}, indent=2) + "\n",
            encoding="utf-8")
    if stored is None:
        return 0
    problems = compare(stored, weights, skipped)
    for line in problems:
        print(line)
    if not problems:
        print(f"{len(stored['weights'])} config(s): weights identical")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
