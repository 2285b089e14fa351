"""Learning curves of runs made two ways, side by side: the score of every checkpoint
(`muzero/selection.py`'s agent score: the mean return of a one-player game, else the worst points
rate over opponents and seats) against the training step, one colour per variant.

    python benchmarks/compare_runs.py --title "CartPole-v1" --out docs/reanalyse_cartpole.png \\
        --runs "without" ck/cp0 ck/cp1 ck/cp2 --runs "--reanalyse-ratio 1" ck/ra0 ck/ra1 ck/ra2

Prints a Markdown table (each run's score at each checkpoint, and its best) and writes the plot
(needs matplotlib: pip install -e ".[experiments]"). Not a test: it reads finished run folders.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from muzero.selection import agent_score


def checkpoint_scores(run_dir: Path) -> list[tuple[int, float]]:
    """(step, agent score) of every evaluated checkpoint of a run folder, in order."""
    lines = (run_dir / "evaluations.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [(record["step"], agent_score(record["evaluation"])) for record in records
            if record.get("evaluation") is not None]


def table(variants: dict[str, list[Path]]) -> str:
    rows = ["| variant | run | score at each checkpoint (step: score) | best |",
            "| --- | --- | --- | --- |"]
    for label, runs in variants.items():
        for run_dir in runs:
            scores = checkpoint_scores(run_dir)
            points = " · ".join(f"{step:,}: {score:.3g}" for step, score in scores)
            rows.append(f"| {label} | {run_dir.name} | {points} | "
                        f"{max(score for _, score in scores):.3g} |")
    return "\n".join(rows)


def plot(variants: dict[str, list[Path]], title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for colour, (label, runs) in zip(("tab:blue", "tab:orange", "tab:green", "tab:red"),
                                     variants.items()):
        for number, run_dir in enumerate(runs):
            steps, scores = zip(*checkpoint_scores(run_dir))
            axes.plot(steps, scores, marker="o", color=colour, alpha=0.8,
                      label=label if number == 0 else None)
    axes.set_xlabel("training step")
    axes.set_ylabel("checkpoint score (return, or worst points rate)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", action="append", required=True,
                        metavar=("LABEL", "RUN_DIR"),
                        help="a variant's label, then its run folders")
    parser.add_argument("--title", default="")
    parser.add_argument("--out", type=Path, help="the plot's file (none: table only)")
    arguments = parser.parse_args()
    variants = {label: [Path(run) for run in runs] for label, *runs in arguments.runs}
    print(table(variants))
    if arguments.out is not None:
        plot(variants, arguments.title, arguments.out)


if __name__ == "__main__":
    main()
