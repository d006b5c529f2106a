"""How well ``feedback.themes`` groups feedback: pairwise precision, recall and F1 on a
labelled sample (tests/feedback/data/themes_sample.csv: short feedback lines in
Chinese and English, in known groups, plus unrelated one-offs).

    .venv/bin/python bench/themes_eval.py [--sample PATH] [--thresholds 0.1,0.15,0.2]

A pair of texts is a true pair when both carry the same group label; a predicted pair
when the clustering put them in one group. Precision = true predicted pairs /
predicted pairs, recall = true predicted pairs / true pairs. ``same_language`` counts
only the pairs written in one script (a "mixed" line pairs with either): character
shingles cannot see that "登录失败" and "login failed" say the same thing, so the
cross-language pairs are the part of the recall this method cannot reach.

Prints one JSON line: the threshold in use (``feedback.themes.DEFAULT_THRESHOLD``)
with its figures, and every threshold tried. No database, no Django settings."""

import argparse
import csv
import json
import sys
import time
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedback.themes import DEFAULT_THRESHOLD, themes_cluster  # noqa: E402

SAMPLE = ROOT / "tests" / "feedback" / "data" / "themes_sample.csv"
THRESHOLDS = (0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3)


def sample_load(path: Path = SAMPLE) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return [{**row, "id": int(row["id"])} for row in csv.DictReader(f)]


def _same_script(lang_a: str, lang_b: str) -> bool:
    return lang_a == lang_b or "mixed" in (lang_a, lang_b)


def pair_scores(groups: list[list[int]], rows: list[dict], *, same_language: bool = False) -> dict:
    label = {r["id"]: r["group"] for r in rows}
    lang = {r["id"]: r["lang"] for r in rows}

    def counted(a: int, b: int) -> bool:
        return not same_language or _same_script(lang[a], lang[b])

    truth = {
        (a, b)
        for a, b in combinations(sorted(label), 2)
        if label[a] and label[a] == label[b] and counted(a, b)  # an empty label is a one-off
    }
    predicted = {(a, b) for g in groups for a, b in combinations(sorted(g), 2) if counted(a, b)}
    hits = len(truth & predicted)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "true_pairs": len(truth),
        "predicted_pairs": len(predicted),
    }


def evaluate(rows: list[dict], threshold: float) -> dict:
    texts = {r["id"]: r["text"] for r in rows}
    started = time.perf_counter()
    groups = themes_cluster(texts, threshold=threshold)
    seconds = time.perf_counter() - started
    return {
        "threshold": threshold,
        **pair_scores(groups, rows),
        "same_language": pair_scores(groups, rows, same_language=True),
        "groups_found": len(groups),
        "largest_group": max((len(g) for g in groups), default=0),
        "seconds": round(seconds, 3),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--thresholds", default=",".join(str(t) for t in THRESHOLDS))
    args = parser.parse_args(argv)
    rows = sample_load(args.sample)
    thresholds = sorted({float(t) for t in args.thresholds.split(",") if t.strip()} | {DEFAULT_THRESHOLD})
    tried = [evaluate(rows, t) for t in thresholds]
    chosen = next(r for r in tried if r["threshold"] == DEFAULT_THRESHOLD)
    labels = [r["group"] for r in rows]
    result = {
        "bench": "themes_eval",
        "sample": str(args.sample.relative_to(ROOT) if args.sample.is_relative_to(ROOT) else args.sample),
        "texts": len(rows),
        "groups": len({g for g in labels if g}),
        "one_offs": sum(1 for g in labels if not g),
        **chosen,
        "tried": [{k: v for k, v in r.items() if k != "seconds"} for r in tried],
    }
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return result


if __name__ == "__main__":
    main()
