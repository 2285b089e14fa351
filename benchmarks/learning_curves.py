"""Learning results of the bare commands: run them, read each checkpoint's evaluation, plot.

    python benchmarks/learning_curves.py --seeds 0 1 2 --out docs/

runs `python -m muzero --game tictactoe --synchronous --envs 64 --seed S` for every seed and
`python -m muzero --game onearmbandit --synchronous` once, one after another (never two at once:
the wall times are part of the result), then prints a Markdown table for the README and writes
`learning_curves.png` (needs matplotlib: pip install -e ".[experiments]"). Not a test: it
takes as long as the runs do. With --no-run it only reads runs already in --checkpoint-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

TICTACTOE_BAR = {"minimax_losses": 0, "random_first_wins": 0.97, "random_second_wins": 0.78,
                 "random_losses": 0}
BANDIT_BAR = 11.80


def run_command(arguments: list[str]) -> float:
    """Run `python -m muzero ARGS` and return its wall time."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "muzero", *arguments], check=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return time.perf_counter() - start


def read_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "evaluations.jsonl").read_text().splitlines()]


def tictactoe_scores(record: dict) -> dict:
    matches = record["evaluation"]["matches"]
    first, second = matches["random"]
    return {"minimax_losses": sum(seat["losses"] for seat in matches["minimax"]),
            "random_first_wins": first["wins"] / max(sum(first.values()), 1),
            "random_second_wins": second["wins"] / max(sum(second.values()), 1),
            "random_losses": first["losses"] + second["losses"]}


def meets_bar(scores: dict) -> bool:
    return (scores["minimax_losses"] == 0 and scores["random_losses"] == 0
            and scores["random_first_wins"] >= TICTACTOE_BAR["random_first_wins"]
            and scores["random_second_wins"] >= TICTACTOE_BAR["random_second_wins"])


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model or platform.processor()}, Python " \
           f"{platform.python_version()}"


def plot(curves: dict[str, list[dict]], bandit: list[dict] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 3 if bandit else 2
    figure, axes = plt.subplots(1, columns, figsize=(5 * columns, 4))
    for seed, records in curves.items():
        minutes = [record["seconds"] / 60 for record in records]
        scores = [tictactoe_scores(record) for record in records]
        axes[0].plot(minutes, [s["minimax_losses"] for s in scores], marker="o",
                     label=f"seed {seed}")
        axes[1].plot(minutes, [100 * s["random_first_wins"] for s in scores], marker="o",
                     label=f"seed {seed}, first")
        axes[1].plot(minutes, [100 * s["random_second_wins"] for s in scores], marker="x",
                     linestyle="--", label=f"seed {seed}, second")
    axes[0].set(title="tic-tac-toe: losses to minimax (of 100)", xlabel="wall time (min)",
                ylabel="losses")
    axes[1].axhline(97, color="grey", linewidth=0.8)
    axes[1].axhline(78, color="grey", linewidth=0.8)
    axes[1].set(title="tic-tac-toe: wins against random (%)", xlabel="wall time (min)",
                ylabel="wins (%)")
    axes[0].legend()
    axes[1].legend(fontsize=7)
    if bandit:
        minutes = [record["seconds"] / 60 for record in bandit]
        means = [record["evaluation"]["returns"]["mean"] for record in bandit]
        errors = [record["evaluation"]["returns"]["stderr"] for record in bandit]
        axes[2].errorbar(minutes, means, yerr=errors, marker="o", label="agent")
        reference = bandit[-1]["evaluation"]["returns"]["reference"]
        axes[2].axhline(reference, color="green", linewidth=0.8, label="Bayes-optimal")
        axes[2].axhline(10.0, color="grey", linewidth=0.8, label="always safe")
        axes[2].set(title="one-arm bandit: mean return", xlabel="wall time (min)",
                    ylabel="return")
        axes[2].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--checkpoint-dir", default="learning-runs")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--no-run", action="store_true", help="only read existing runs")
    parser.add_argument("--skip-bandit", action="store_true")
    arguments = parser.parse_args()
    root = Path(arguments.checkpoint_dir)
    wall: dict[str, float] = {}
    if not arguments.no_run:
        for seed in arguments.seeds:
            wall[f"tictactoe {seed}"] = run_command(
                ["--game", "tictactoe", "--synchronous", "--envs", "64", "--seed", str(seed),
                 "--checkpoint-dir", str(root), "--run", f"seed{seed}"])
        if not arguments.skip_bandit:
            wall["onearmbandit 0"] = run_command(
                ["--game", "onearmbandit", "--synchronous", "--checkpoint-dir", str(root),
                 "--run", "seed0"])
    print(f"machine: {machine()}\n")
    print("| game | seed | wall time | first checkpoint meeting the bar | final evaluation |")
    print("| --- | --- | --- | --- | --- |")
    curves = {}
    for seed in arguments.seeds:
        records = read_records(root / "tictactoe" / f"seed{seed}")
        curves[seed] = records
        first = next((r for r in records if meets_bar(tictactoe_scores(r))), None)
        met = (f"step {first['step']}, {first['seconds'] / 60:.1f} min" if first
               else "not met")
        seconds = wall.get(f"tictactoe {seed}")
        print(f"| tictactoe | {seed} | "
              f"{f'{seconds / 60:.1f} min' if seconds else 'n/a'} | {met} | "
              f"{records[-1]['evaluation']['summary']} |")
    bandit = None
    bandit_dir = root / "onearmbandit" / "seed0"
    if bandit_dir.exists():
        bandit = read_records(bandit_dir)
        final = bandit[-1]["evaluation"]["returns"]
        first = next((r for r in bandit if r["evaluation"]["returns"]["mean"] >= BANDIT_BAR),
                     None)
        seconds = wall.get("onearmbandit 0")
        met = f"step {first['step']}" if first else "not met"
        print(f"| onearmbandit | 0 | {f'{seconds / 60:.1f} min' if seconds else 'n/a'} | {met} | "
              f"{final['mean']:.3f} ± {final['stderr']:.3f} over {final['episodes']} "
              f"episodes (Bayes-optimal {final['reference']:.3f}) |")
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(curves, bandit, out / "learning_curves.png")
    print(f"\nwrote {out / 'learning_curves.png'}")


if __name__ == "__main__":
    main()
