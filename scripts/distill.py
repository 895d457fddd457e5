"""A whole distillation recipe, timed: fine-tune the teacher (textcnn teach), score the training
texts and their augmentations once (the logit cache), train the distilled student over seeds, the
same student alone for comparison, and the teacher's and student's sentences/s in this process on
the same threads. The config distils one task (configs/studies/*-distill.yaml). Each step appends
one JSON line to OUT/results.jsonl as it ends, so a run stopped early keeps its numbers; a teacher
folder already in OUT is reused.

    nice -n 19 python scripts/distill.py --out runs/distill-sst2 --threads 1
    python scripts/distill.py --config configs/studies/trec-distill.yaml --out runs/distill-trec
    python scripts/distill.py --set teacher.epochs=1 --set distill.augment=2 --seeds 0
    python scripts/distill.py --device cuda --threads 0 --seeds 0   # scripts/device_check.sh
    python scripts/distill.py --report runs/distill-sst2 runs/distill-trec  # the table
    python scripts/distill.py --out runs/distill-sst2 --speed   # time both models again
    python scripts/distill.py --out runs/distill-sst2 --speed --backend torch  # unfolded student
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from textcnn import load, load_config, train
from textcnn.backends import BACKENDS
from textcnn.contrib.distill.student import extra_texts, soft_targets
from textcnn.contrib.distill.teacher import TEACHER_JSON, Teacher, teach
from textcnn.data import make_splits
from textcnn.modality import load_datasets
from textcnn.threads import set_threads


def record(out: Path, row: dict) -> None:
    """Print ``row`` and append it to ``out/results.jsonl``."""
    print(json.dumps(row), flush=True)
    with open(out / "results.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def per_second(fn, texts: list[str], repeat: int = 1) -> float:
    """Sentences per second of ``fn(texts)`` (the best of ``repeat`` passes)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - start)
    return round(len(texts) / best, 1)


def _mean(values: list[float]) -> str:
    """``mean ± sd (n)`` of accuracies, in percent."""
    if not values:
        return "-"
    sd = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.1f}{sd} ({len(values)})"


def report(outs: list[str]) -> str:
    """The markdown table of finished recipes, one row per ``--out`` folder: the teacher (its
    ``teacher.json``), scoring, test accuracy of the students (mean ± sd over seeds; a seed's
    latest row), the speed step, and the recipe's wall minutes (the teacher's step, the largest
    scoring, each student's latest run; "+ teacher" where the teacher was fine-tuned apart)."""
    lines = ["| run | teacher val / test | teacher fine-tune s | texts scored, s | "
             "student alone | distilled | gain | teacher / student sentences/s (x) | "
             "recipe minutes |", "|---|---|---|---|---|---|---|---|---|"]
    for out in map(Path, outs):
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        info = json.loads(next((out / "teacher").glob(f"*/{TEACHER_JSON}")).read_text())
        acc = {split: 100 * info["metrics"][split]["accuracy"] for split in info["metrics"]}
        tests, walls = {}, {}
        for row in rows:
            if row["step"].startswith("student"):
                tests.setdefault(row["step"], {})[row["seed"]] = row["metrics"]["test"]["accuracy"]
                walls[row["step"], row["seed"]] = row["wall_seconds"]
        alone, distilled = (list(tests.get(f"student {k}", {}).values())
                            for k in ("alone", "distilled"))
        gain = (f"{100 * (statistics.mean(distilled) - statistics.mean(alone)):+.1f}"
                if alone and distilled else "-")
        scoring = max((r for r in rows if r["step"] == "scoring"), key=lambda r: r["scored"])
        teacher = [r["wall_seconds"] for r in rows if r["step"] == "teacher"][-1:]
        minutes = (sum(teacher) + scoring["wall_seconds"] + sum(walls.values())) / 60
        speed = [r for r in rows if r["step"] == "speed"][-1:]
        rate = (f"{speed[0]['teacher_per_s']:,.0f} / {speed[0]['student_per_s']:,.0f} "
                f"({speed[0]['student_per_s'] / speed[0]['teacher_per_s']:,.0f}x)"
                if speed else "-")
        lines.append(f"| {out.name} | {acc['validation']:.1f} / {acc.get('test', 0):.1f} | "
                     f"{info['train_seconds']:,.0f} | {scoring['texts']:,}, "
                     f"{scoring['wall_seconds']:,.0f} | {_mean(alone)} | {_mean(distilled)} | "
                     f"{gain} | {rate} | {minutes:.0f}{'' if teacher else ' + teacher'} |")
    return "\n".join(lines)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/studies/sst2-distill.yaml")
    ap.add_argument("--out", default="runs/distill-sst2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="fine-tuning, scoring and training device "
                                                    "(the speed step runs on the CPU)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--no-baseline", action="store_true", help="skip the student trained alone")
    ap.add_argument("--alone", metavar="CONFIG", help="the student trained alone (default: "
                    "--config without its distill: section)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--report", nargs="+", metavar="OUT", help="print the table of these "
                    "--out folders' results and exit")
    ap.add_argument("--speed", action="store_true", help="time the teacher and the first "
                    "seed's distilled student of a finished --out again, and exit")
    ap.add_argument("--backend", default="auto", choices=BACKENDS,
                    help="the student's inference backend in the speed step")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    if args.report:
        print(report(args.report))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    task = distilled_task(load_config(args.config, args.overrides))
    teacher_dir = out / "teacher" / task
    run = [f"train.threads={args.threads}", f"train.device={args.device}"]
    config = load_config(args.config, [*run, f"distill.teachers.{task}={teacher_dir}",
                                       f"distill.cache={out / 'cache'}", *args.overrides])
    set_threads(args.threads)
    if args.speed:
        speed(out, out / f"student-distilled-{args.seeds[0]}", config, task, teacher_dir,
              args.threads, args.backend)
        return
    if not (teacher_dir / TEACHER_JSON).is_file():
        start = time.perf_counter()
        info = teach(config, out / "teacher")[task]
        record(out, {"step": "teacher", "metrics": info["metrics"],
                     "best_epoch": info["best_epoch"], "history": info["history"],
                     "wall_seconds": round(time.perf_counter() - start, 1)})
    dataset = load_datasets(config)[task]
    train_split = make_splits(dataset, config.train.seed)["train"]
    texts = train_split.texts + extra_texts(config, train_split.texts)
    start = time.perf_counter()
    _, scored = soft_targets(config, task, texts, dataset.label_names)
    record(out, {"step": "scoring", "texts": len(texts), "scored": scored,
                 "wall_seconds": round(time.perf_counter() - start, 1)})
    runs = [("distilled", config)]
    if not args.no_baseline:
        alone = (load_config(args.alone, run) if args.alone
                 else load_config(args.config, [*run, *args.overrides, "distill={}"]))
        runs.append(("alone", alone))
    for seed in args.seeds:  # seed by seed: a run stopped early has both kinds of student
        for name, cfg in runs:
            cfg.train.seed = seed
            folder = out / f"student-{name}-{seed}"
            start = time.perf_counter()
            train(cfg, output=folder, log=lambda line: None)
            metrics = json.loads((folder / "metrics.json").read_text())
            record(out, {"step": f"student {name}", "seed": seed, "metrics": metrics[task],
                         "wall_seconds": round(time.perf_counter() - start, 1)})
            if (name, seed) == ("distilled", args.seeds[0]):
                speed(out, folder, config, task, teacher_dir, args.threads, args.backend)


def distilled_task(config) -> str:
    """The one task ``config`` distils."""
    if len(config.distill.teachers) != 1:
        raise SystemExit(f"the config must distil one task (distill.teachers: "
                         f"{sorted(config.distill.teachers)})")
    return next(iter(config.distill.teachers))


def speed(out: Path, student_dir: Path, config, task: str, teacher_dir: Path, threads: int,
          backend: str = "auto") -> None:
    """The teacher's and the student's sentences/s on the test texts, here, on ``threads``."""
    test = make_splits(load_datasets(config)[task], config.train.seed)["test"].texts
    student = load(student_dir, threads=threads, backend=backend)
    teacher = Teacher(teacher_dir, "cpu", config.teacher.eval_batch_size,
                      config.teacher.max_length)
    teacher.logits(test[:8])  # loads the model: not part of the timed pass
    record(out, {"step": "speed", "threads": threads, "texts": len(test),
                 "teacher_per_s": per_second(teacher.logits, test),
                 "student_per_s": per_second(student.predict_proba, test, repeat=3),
                 "student_backend": student.backend})


if __name__ == "__main__":
    main()
