"""Learning results of the bare commands: run them, read each checkpoint's evaluation, plot.

    python benchmarks/learning_curves.py --seeds 0 1 2 --out docs/

runs `python -m muzero --game tictactoe --synchronous --envs 64 --seed S` and
`python -m muzero --game onearmbandit --synchronous --seed S` for every seed, one after another
(never two at once: the wall times are part of the result), then prints a Markdown table for the
README (each run's agent, the checkpoint `muzero/selection.py` chose, and its evaluation) and writes
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


def agent_record(run_dir: Path, records: list[dict]) -> dict:
    """The evaluation record of the run's agent (the checkpoint its `agent` file names)."""
    step = int((run_dir / "agent").read_text().strip().removeprefix("step-"))
    return next(record for record in records if record["step"] == step)


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


def minutes(seconds: float | None) -> str:
    return f"{seconds / 60:.1f} min" if seconds else "n/a"


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


def plot(curves: dict[int, list[dict]], bandits: dict[int, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 3 if bandits else 2
    figure, axes = plt.subplots(1, columns, figsize=(5 * columns, 4))
    for seed, records in curves.items():
        times = [record["seconds"] / 60 for record in records]
        scores = [tictactoe_scores(record) for record in records]
        axes[0].plot(times, [s["minimax_losses"] for s in scores], marker="o",
                     label=f"seed {seed}")
        axes[1].plot(times, [100 * s["random_first_wins"] for s in scores], marker="o",
                     label=f"seed {seed}, first")
        axes[1].plot(times, [100 * s["random_second_wins"] for s in scores], marker="x",
                     linestyle="--", label=f"seed {seed}, second")
    axes[0].set(title="tic-tac-toe: losses to minimax (of 100)", xlabel="wall time (min)",
                ylabel="losses")
    axes[1].axhline(97, color="grey", linewidth=0.8)
    axes[1].axhline(78, color="grey", linewidth=0.8)
    axes[1].set(title="tic-tac-toe: wins against random (%)", xlabel="wall time (min)",
                ylabel="wins (%)")
    axes[0].legend()
    axes[1].legend(fontsize=7)
    for seed, bandit in bandits.items():
        times = [record["seconds"] / 60 for record in bandit]
        means = [record["evaluation"]["returns"]["mean"] for record in bandit]
        errors = [record["evaluation"]["returns"]["stderr"] for record in bandit]
        axes[2].errorbar(times, means, yerr=errors, marker="o", label=f"seed {seed}")
    if bandits:
        reference = next(iter(bandits.values()))[-1]["evaluation"]["returns"]["reference"]
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
                wall[f"onearmbandit {seed}"] = run_command(
                    ["--game", "onearmbandit", "--synchronous", "--seed", str(seed),
                     "--checkpoint-dir", str(root), "--run", f"seed{seed}"])
    print(f"machine: {machine()}\n")
    print("| game | seed | wall time | first checkpoint meeting the bar | agent |")
    print("| --- | --- | --- | --- | --- |")
    curves = {}
    for seed in arguments.seeds:
        run_dir = root / "tictactoe" / f"seed{seed}"
        records = read_records(run_dir)
        curves[seed] = records
        first = next((r for r in records if meets_bar(tictactoe_scores(r))), None)
        met = (f"step {first['step']}, {first['seconds'] / 60:.1f} min" if first
               else "not met")
        agent = agent_record(run_dir, records)
        print(f"| tictactoe | {seed} | {minutes(wall.get(f'tictactoe {seed}'))} | {met} | "
              f"step {agent['step']}: {agent['evaluation']['summary']} |")
    bandits = {}
    for seed in arguments.seeds:
        run_dir = root / "onearmbandit" / f"seed{seed}"
        if not run_dir.exists():
            continue
        records = bandits[seed] = read_records(run_dir)
        first = next((r for r in records if r["evaluation"]["returns"]["mean"] >= BANDIT_BAR),
                     None)
        agent = agent_record(run_dir, records)
        returns = agent["evaluation"]["returns"]
        met = f"step {first['step']}" if first else "not met"
        print(f"| onearmbandit | {seed} | {minutes(wall.get(f'onearmbandit {seed}'))} | {met} | "
              f"step {agent['step']}: {returns['mean']:.3f} ± {returns['stderr']:.3f} over "
              f"{returns['episodes']} episodes (Bayes-optimal {returns['reference']:.3f}) |")
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(curves, bandits, out / "learning_curves.png")
    print(f"\nwrote {out / 'learning_curves.png'}")


if __name__ == "__main__":
    main()
