"""Training and prediction speed of textcnn against a plain PyTorch TextCNN loop.

The plain loop is what a typical public TextCNN does: the same model (300-d embeddings,
3 x 100 filters of widths 3/4/5, dropout 0.5, max-norm 3), Adadelta, batches of 50 in random order
padded to their longest sentence, no bucketing. textcnn runs its own Trainer epoch (length
bucketing, fused AdamW by default) on the same token ids. Epochs alternate between the two so
machine noise hits both alike; medians and the ratio come from one run.

    python scripts/bench.py --threads 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import nn

from textcnn.classifier import TextClassifier
from textcnn.config import from_dict
from textcnn.data import load_raw, make_splits
from textcnn.models import build_model
from textcnn.threads import set_threads
from textcnn.tokenizer import encode, train_tokenizer
from textcnn.training import Encoded, Trainer


class PlainTextCNN(nn.Module):
    """The textbook Kim CNN, as commonly copy-pasted."""

    def __init__(self, vocab: int, dim=300, kernels=(3, 4, 5), channels=100, classes=2):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(dim, channels, k) for k in kernels)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(channels * len(kernels), classes)

    def forward(self, x):
        x = self.emb(x).transpose(1, 2)
        x = torch.cat([torch.relu(c(x)).max(dim=2).values for c in self.convs], dim=1)
        return self.fc(self.drop(x))


def plain_epoch(model, opt, ids, lengths, labels, rng, batch=50) -> float:
    model.train()
    start = time.perf_counter()
    order = rng.permutation(len(labels))
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        width = max(int(lengths[idx].max()), 5)
        x = torch.zeros(len(idx), width, dtype=torch.long)
        x[:, : min(width, ids.shape[1])] = torch.from_numpy(ids[idx, :width].astype(np.int64))
        loss = nn.functional.cross_entropy(model(x), torch.from_numpy(labels[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.fc.weight.copy_(torch.renorm(model.fc.weight, 2, 0, 3.0))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="epochs of each contender")
    ap.add_argument("--data-dir")
    ap.add_argument("--output", help="write the results as JSON here")
    args = ap.parse_args()
    threads = set_threads(args.threads).count

    config = from_dict({"tasks": {"sentiment": {"dataset": "sst2"}},
                        "train": {"threads": threads}})
    raw = load_raw(config.tasks["sentiment"], args.data_dir)
    splits = make_splits(raw, seed=0)
    tok = train_tokenizer(splits["train"].texts, config.tokenizer)
    ids, lengths = encode(tok, splits["train"].texts)
    labels = splits["train"].labels
    val_ids, val_len = encode(tok, splits["validation"].texts)
    data = {"sentiment": {"train": Encoded(ids, lengths, labels),
                          "validation": Encoded(val_ids, val_len, splits["validation"].labels)}}
    vocab, n = tok.get_vocab_size(), len(labels)

    torch.manual_seed(0)
    plain = PlainTextCNN(vocab)
    plain_opt = torch.optim.Adadelta(plain.parameters(), lr=1.0, rho=0.95, eps=1e-6)
    contenders = {"plain PyTorch loop (Adadelta, random batches)": None}
    trainers = {}
    for label, optimizer, lr in (("textcnn (AdamW, default config)", "adamw", 1e-3),
                                 ("textcnn (Adadelta, as Kim)", "adadelta", 1.0)):
        cfg = from_dict({"tasks": {"sentiment": {"dataset": "sst2"}},
                         "train": {"threads": threads, "optimizer": optimizer, "lr": lr}})
        model = build_model(cfg.model, vocab, {"sentiment": 2})
        trainers[label] = Trainer(cfg, model, data, log=lambda line: None)
        contenders[label] = trainers[label]
    times: dict[str, list[float]] = {k: [] for k in contenders}
    rng = np.random.default_rng(0)
    for _ in range(args.rounds):
        for label, trainer in contenders.items():
            if trainer is None:
                times[label].append(plain_epoch(plain, plain_opt, ids, lengths, labels, rng))
            else:
                start = time.perf_counter()
                trainer.train_epoch()
                times[label].append(time.perf_counter() - start)

    # batched prediction, raw strings -> probabilities (test split, length-sorted batches)
    clf = TextClassifier(trainers["textcnn (AdamW, default config)"].model, tok, config,
                         {"sentiment": raw.label_names})
    texts = splits["test"].texts * 3
    clf.predict_proba(texts[:500])
    pred = []
    for _ in range(5):
        start = time.perf_counter()
        clf.predict_proba(texts)
        pred.append(len(texts) / (time.perf_counter() - start))

    base = statistics.median(times["plain PyTorch loop (Adadelta, random batches)"])
    rows = []
    for label, ts in times.items():
        med = statistics.median(ts)
        rows.append({"system": label, "epoch_seconds": round(med, 2),
                     "train_sentences_per_s": round(n / med),
                     "ratio_to_plain": round(med / base, 2)})
    result = {"threads": threads, "torch": torch.__version__, "train_rows": n,
              "rounds": args.rounds, "epochs": rows,
              "predict_sentences_per_s": round(statistics.median(pred))}
    print(f"threads {threads}, torch {torch.__version__}, SST-2 train {n} sentences, "
          f"median of {args.rounds} alternating epochs\n")
    print("| system | s / epoch | train sentences/s | x plain |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['epoch_seconds']} | {r['train_sentences_per_s']} | "
              f"{r['ratio_to_plain']} |")
    print(f"\nbatched prediction (raw strings -> probabilities): "
          f"{result['predict_sentences_per_s']} sentences/s (median of 5)")
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
