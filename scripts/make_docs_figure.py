"""Make the image-vs-text page's figure, ``docs/compare-curves.png``, from a compare run.

Runs ``textcnn compare`` with its defaults (SST-2 from ``$TEXTCNN_DATA_DIR`` and the bundled
digits) into a report folder, unless ``--report`` names one already written, and redraws its
side-by-side learning curves small (dpi 80) into ``docs/``.

Usage::

    TEXTCNN_DATA_DIR=../shared/data python scripts/make_docs_figure.py --threads 2
    python scripts/make_docs_figure.py --report compare-report   # reuse a finished report
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from textcnn.contrib.studies.compare import read_history, run
from textcnn.contrib.studies.compare_figures import plot_curves_side_by_side
from textcnn.folder import FOLDER_KEYS

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 200 * 1024  # bytes: the figure is committed


def side(report: Path, name: str) -> dict | None:
    """What ``plot_curves_side_by_side`` needs, read back from the report folder."""
    from textcnn.config import from_dict

    folder = report / f"{name}-model"
    if not (folder / "history.jsonl").is_file():
        return None
    config = json.loads((folder / "config.json").read_text())
    results = json.loads((report / "results.json").read_text())
    return {"history": read_history(folder), "head": next(iter(config["heads"])),
            "dataset": results["sides"][name]["dataset"],
            "config": from_dict({k: v for k, v in config.items() if k not in FOLDER_KEYS})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", help="an existing compare report folder to draw from")
    parser.add_argument("--output", default=str(ROOT / "docs" / "compare-curves.png"))
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    report = Path(args.report) if args.report else ROOT / "compare-report"
    if not args.report:
        run(report, threads=args.threads)
    sides = {n: s for n in ("text", "image") if (s := side(report, n)) is not None}
    if not sides:
        print(f"no model folders in {report}", file=sys.stderr)
        return 1
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_curves_side_by_side(sides, out, dpi=80)
    size = out.stat().st_size
    print(f"{out}: {size / 1024:.0f} KB", file=sys.stderr)
    return 0 if size < LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
