import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from event_files import tags_in
from server_helpers import MUZERO_WITH_CTRL_C

from muzero import load_agent, loops
from muzero.__main__ import main
from muzero.checkpoint import AGENT, CheckpointError, load_checkpoint
from muzero.config import RUNTIME_FIELDS
from muzero.interrupt import stop_on_ctrl_c
from muzero.network import WeightsMismatchError, network_for_game
from muzero.play import play_in_terminal
from muzero.plugins import load_game
from muzero.reporting import EVALUATIONS
from muzero.selection import agent_score
from muzero.synchronous import SynchronousRun

TINY = dict(channels=8, num_blocks=1, jit_compile=False, num_simulations=4, batch_size=16,
            num_unroll_steps=3, num_envs=8, games_per_iteration=16, num_games=48, num_steps=12,
            checkpoint_interval=4, num_eval_games=4, replay_capacity=2000)
PLUGIN = load_game("tictactoe")
CONFIG = PLUGIN.make_config().replace(**TINY)


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished run: (run, run folder)."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    run = SynchronousRun(PLUGIN, CONFIG, run_dir, progress_bars=False, log=quiet)
    run.run()
    return run, run_dir


def test_run_trains_to_the_end_and_records_everything(trained):
    run, run_dir = trained
    assert run.learner.step == 12 and run.games_played == 48
    assert run.replay.total_games == 48
    lines = [json.loads(line) for line in (run_dir / EVALUATIONS).read_text().splitlines()]
    assert [line["step"] for line in lines] == [4, 8, 12]
    assert set(lines[-1]["evaluation"]["matches"]) == {"minimax", "random"}
    assert sum(lines[-1]["evaluation"]["matches"]["random"][0].values()) == 2  # 4 games, 2 seats
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint.step == 12 and checkpoint.path.name == "step-000012"
    agent = load_checkpoint(run_dir, AGENT)  # the best evaluated, later on ties
    scores = {line["step"]: agent_score(line["evaluation"]) for line in lines}
    assert agent.step == max(scores, key=lambda step: (scores[step], step))
    assert agent.meta["agent"] == {"step": agent.step, "score": scores[agent.step],
                                   "candidates": list(scores).index(agent.step) + 1}
    kept = {path.name for path in run_dir.glob("step-*")}  # older checkpoints are pruned
    assert kept == {"step-000008", "step-000012", agent.path.name}
    tags = tags_in(run_dir)
    for tag in ("loss/value", "loss/reward", "loss/policy", "loss/to_play", "loss/l2",
                "throughput/train_steps_per_second", "throughput/selfplay_positions_per_second",
                "evaluation/minimax/seat_0_losses", "config", "selfplay/mean_game_length"):
        assert tag in tags


def test_checkpoint_reloads_to_identical_outputs(trained):
    run, run_dir = trained
    agent = load_agent(run_dir)
    observations = np.random.default_rng(0).random((5, 3, 3, 3), dtype=np.float32)
    expected = run.learner.network.representation(observations)
    for saved, loaded in zip(run.learner.network.get_weights(),
                             agent.model.network.get_weights()):
        np.testing.assert_array_equal(saved, loaded)
    np.testing.assert_array_equal(agent.model.network.representation(observations), expected)
    hidden, action = expected.numpy(), np.arange(5)
    np.testing.assert_array_equal(agent.model.network.dynamics([hidden, action])[1],
                                  run.learner.network.dynamics([hidden, action])[1])
    # The compiled inference pads the batch to a bucket: equal to rounding.
    np.testing.assert_allclose(agent.model.initial_inference(observations).hidden, hidden,
                               atol=1e-6)


def test_an_averaging_run_evaluates_and_saves_the_averaged_agent(tmp_path):
    """With `agent_averaging` the agent is the moving average: evaluated at each checkpoint,
    saved beside the trained weights, and what `load_agent` plays; `--resume` still continues
    from the trained weights."""
    config = CONFIG.replace(agent_averaging=4, num_games=16, num_steps=4)
    run = SynchronousRun(PLUGIN, config, tmp_path / "run", progress_bars=False, log=quiet)
    evaluated = []
    real_evaluate = run.evaluator.evaluate
    run.evaluator.evaluate = lambda weights: evaluated.append(weights) or real_evaluate(weights)
    run.run()
    averaged, trained = run.learner.agent_weights(), run.learner.network.get_weights()
    assert any(not np.array_equal(a, t) for a, t in zip(averaged, trained))
    for sent, expected in zip(evaluated[-1], averaged):
        np.testing.assert_array_equal(sent, expected)
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.agent_weights_path.name == "agent.weights.h5"
    for loaded, expected in zip(load_agent(tmp_path / "run").model.network.get_weights(),
                                averaged):
        np.testing.assert_array_equal(loaded, expected)
    network = network_for_game(PLUGIN, config)
    network.load_weights_file(checkpoint.weights_path)
    for loaded, expected in zip(network.get_weights(), trained):
        np.testing.assert_array_equal(loaded, expected)


def test_agent_is_deterministic_and_plays_legal_moves(trained):
    _, run_dir = trained
    agent = load_agent(run_dir)
    game = PLUGIN.make_game(CONFIG, np.random.default_rng(0))
    for _ in range(3):
        game.step(agent.select_action(game))
    first = agent.select_action(game)
    assert game.legal_actions()[first]
    assert all(agent.select_action(game) == first for _ in range(3))


def quit_at_first_checkpoint(monkeypatch) -> Callable[[str], None]:
    """A run log that quits at once (as a second Ctrl-C does), right after the step-4
    checkpoint: the run leaves with KeyboardInterrupt."""
    def log(line: str) -> None:
        raise KeyboardInterrupt
    return log


def ctrl_c_in_second_selfplay_round(monkeypatch) -> Callable[[str], None]:
    """A real SIGINT to this process during the second self-play round (after the step-4
    checkpoint): the run stops within a move, drops the round and writes a checkpoint."""
    real_play_games = loops.play_games
    rounds = []

    def play_games(*args, progress=None, **kwargs):
        rounds.append(len(rounds))

        def report(games: int) -> None:
            if len(rounds) == 2:
                os.kill(os.getpid(), signal.SIGINT)
            progress(games)
        return real_play_games(*args, progress=report, **kwargs)
    monkeypatch.setattr(loops, "play_games", play_games)
    return quiet


@pytest.mark.parametrize("cut_log, changes", [
    (quit_at_first_checkpoint, {}), (ctrl_c_in_second_selfplay_round, {}),
    (quit_at_first_checkpoint, {"reanalyse_ratio": 0.5}),  # with the reanalysis state too
    (quit_at_first_checkpoint, {"agent_averaging": 4}),  # with the agent's moving average
])
def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch, cut_log, changes,
                                              ctrl_c_delivered):
    tf.config.experimental.enable_op_determinism()
    config = CONFIG.replace(**changes)
    whole = SynchronousRun(PLUGIN, config, tmp_path / "whole", progress_bars=False, log=quiet)
    whole.run()

    cut = SynchronousRun(PLUGIN, config, tmp_path / "cut", progress_bars=False,
                         log=cut_log(monkeypatch))
    try:
        cut.run()
        assert cut.interrupted and cut.learner.step == 4 and cut.games_played == 16
    except KeyboardInterrupt:
        assert cut_log is quit_at_first_checkpoint
    monkeypatch.undo()
    checkpoint = load_checkpoint(tmp_path / "cut")
    assert checkpoint.step == 4
    # runtime options are not saved: exact on the same machine given the same ones again
    same_machine = {name: getattr(CONFIG, name) for name in RUNTIME_FIELDS}
    resumed = SynchronousRun(PLUGIN, checkpoint.config.replace(**same_machine), tmp_path / "cut",
                             checkpoint, progress_bars=False, log=quiet)
    assert resumed.learner.step == 4 and resumed.games_played == 16
    resumed.run()
    assert resumed.learner.step == whole.learner.step == 12
    for a, b in zip(whole.learner.network.get_weights(), resumed.learner.network.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(whole.learner.optimizer_state(), resumed.learner.optimizer_state()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(whole.replay.priorities, resumed.replay.priorities)
    np.testing.assert_array_equal(whole.replay.policies, resumed.replay.policies)
    assert whole.reanalyser.state() == resumed.reanalyser.state()
    assert (whole.reanalyser.reanalysed > 0) == ("reanalyse_ratio" in changes)
    assert resumed.selection == whole.selection
    assert ((tmp_path / "cut" / AGENT).read_text() == (tmp_path / "whole" / AGENT).read_text())


def test_ctrl_c_handler_stops_first_and_quits_second_time(capfd, ctrl_c_delivered):
    before = signal.getsignal(signal.SIGINT)
    with stop_on_ctrl_c("stopping soon") as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs at the next bytecode boundary
        assert stop.is_set() and "stopping soon" in capfd.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is before


def copy_checkpoint(run_dir: Path, target: Path) -> Path:
    import shutil

    source = load_checkpoint(run_dir).path
    shutil.copytree(source, target)
    return target


def test_corrupt_or_mismatched_checkpoints_fail_clearly(trained, tmp_path):
    _, run_dir = trained
    broken = copy_checkpoint(run_dir, tmp_path / "sidecar")
    (broken / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="checkpoint.json: corrupt, not valid JSON"):
        load_checkpoint(broken)

    broken = copy_checkpoint(run_dir, tmp_path / "weights")
    data = (broken / "network.weights.h5").read_bytes()
    (broken / "network.weights.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsMismatchError, match="not a readable HDF5"):
        load_agent(broken)

    broken = copy_checkpoint(run_dir, tmp_path / "replay")
    (broken / "replay.npz").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="replay.npz: corrupt"):
        load_checkpoint(broken).replay_arrays()

    broken = copy_checkpoint(run_dir, tmp_path / "missing")
    (broken / "optimizer.npz").unlink()
    with pytest.raises(CheckpointError, match="optimizer.npz is missing"):
        load_checkpoint(broken)

    other = network_for_game(PLUGIN, CONFIG.replace(channels=16))
    with pytest.raises(WeightsMismatchError, match="channels: file 8 vs network 16"):
        other.load_weights_file(load_checkpoint(run_dir).weights_path)

    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nowhere")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "sidecar")]) == 2


def test_a_checkpoint_of_another_game_is_refused(trained, capsys):
    _, run_dir = trained
    assert main(["evaluate", "--checkpoint", str(run_dir), "--game", "onearmbandit"]) == 2
    assert "is of game 'tictactoe', not 'onearmbandit'" in capsys.readouterr().err


def test_evaluate_command_reports_every_seat(trained, capsys):
    _, run_dir = trained
    assert main(["evaluate", "--checkpoint", str(run_dir), "--opponent", "minimax",
                 "--games", "4"]) == 0
    out = capsys.readouterr().out
    assert "minimax: seat 0 W" in out and "seat 1 W" in out
    assert main(["evaluate", "--checkpoint", str(run_dir), "--opponent", "self",
                 "--games", "2"]) == 0
    assert main(["evaluate", "--checkpoint", str(run_dir), "--opponent", "nobody"]) == 2


def test_play_against_the_agent_reprompts_bad_input(trained):
    _, run_dir = trained
    agent = load_agent(run_dir)
    typed = iter(["x", "42"] + [str(cell) for cell in range(9)] * 5)
    shown = []
    totals = play_in_terminal(agent.plugin, agent.config, "agent", 0, read=lambda _: next(typed),
                              write=shown.append, bot=agent)
    assert "not a number: 'x'" in shown and "illegal move: 42" in shown
    # the same game replayed from the moves accepted: the totals returned are its rewards
    agent_moves = iter(int(line.split()[-1]) for line in shown if line.startswith("agent plays"))
    human_moves = iter(range(9))
    game = agent.plugin.make_game(agent.config, np.random.default_rng(0))
    expected = np.zeros(2)
    while not game.terminal():
        if game.to_play() == 0:
            move = next(cell for cell in human_moves if game.legal_actions()[cell])
        else:
            move = next(agent_moves)
        expected += game.step(move)
    np.testing.assert_array_equal(totals, expected)
    assert shown[-1] == f"total rewards per player: {expected.tolist()}"


# PYTHONFAULTHANDLER: a crashed subprocess prints its stack.
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONFAULTHANDLER": "1"}


def test_play_command_in_a_real_terminal_session(trained):
    _, run_dir = trained
    typed = "oops\n" + "".join(f"{cell}\n" for cell in range(9)) * 5
    done = subprocess.run([sys.executable, "-m", "muzero", "play", "--checkpoint", str(run_dir)],
                          input=typed, capture_output=True, text=True, timeout=120, env=ENV)
    assert done.returncode == 0, done.stderr
    assert "not a number: 'oops'" in done.stdout and "total rewards per player" in done.stdout


def test_a_damaged_latest_checkpoint_names_the_one_to_resume_from(trained, tmp_path, capsys):
    """A long run whose newest checkpoint was damaged on disk: `--resume` names the damage and
    the run's earlier checkpoints, and the `--resume` it names continues the run."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained[1], run_dir)
    hint = ("if that checkpoint is damaged, this run's earlier ones are step-000008 (continue "
            f"from the newest with --resume {run_dir / 'step-000008'})")
    sidecar = run_dir / "step-000012" / "checkpoint.json"
    intact = sidecar.read_text()
    sidecar.write_text("{")
    assert main(["--synchronous", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"{sidecar}: corrupt, not valid JSON" in err and hint in err
    sidecar.write_text(intact)
    weights = run_dir / "step-000012" / "network.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert main(["--synchronous", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"{weights}: not a readable HDF5 weights file" in err and hint in err
    assert main(["--synchronous", "--resume", str(run_dir / "step-000008"), "--envs", "8",
                 "--jit-compile", "false"]) == 0
    assert load_checkpoint(run_dir).step == 12  # written again, whole
    network_for_game(PLUGIN, CONFIG).load_weights_file(weights)


def test_ctrl_c_leaves_a_loadable_checkpoint(tmp_path):
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in TINY.items()
             if name not in ("num_envs",)]
    command = [*MUZERO_WITH_CTRL_C, "--game", "tictactoe", "--synchronous",
               "--checkpoint-dir", str(tmp_path), "--run", "interrupted", "--envs", "8",
               *flags, "--num-steps", "100000", "--num-games", "1000000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=ENV)
    run_dir = tmp_path / "tictactoe" / "interrupted"
    deadline = time.monotonic() + 120
    while not (run_dir / "latest").exists() and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    assert (run_dir / "latest").exists(), "no first checkpoint within 120 s"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted: checkpoint written" in out
    assert "Ctrl-C: stopping" in err
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint.step >= 4
    agent = load_agent(run_dir)
    assert agent.select_action(PLUGIN.make_game(CONFIG, np.random.default_rng(0))) in range(9)
    # the command it prints continues the run (no --game: the checkpoint names it), here with a
    # nearer end and this test's runtime options
    printed = re.search(r"resume with: python -m muzero (.+)", err).group(1).split()
    assert printed == ["--synchronous", "--resume", str(run_dir)]
    games = checkpoint.meta["games_played"]
    assert main([*printed, "--num-steps", str(checkpoint.step + 2), "--num-games",
                 str(games + 8), "--envs", "8", "--jit-compile", "false"]) == 0
    assert load_checkpoint(run_dir).step == checkpoint.step + 2


def test_a_checkpoint_of_schema_1_resumes(tmp_path):
    """tests/fixtures/schema1-checkpoint was written by commit 07c3a99 (config schema 1, which
    saved runtime options: this one has envs 8 and tf_threads 1). It loads with today's code,
    its hyper-parameters intact and this machine's runtime options, and trains on."""
    fixture = Path(__file__).parent / "fixtures" / "schema1-checkpoint"
    run_dir = tmp_path / "old-run"
    shutil.copytree(fixture, run_dir / fixture.name)
    checkpoint = load_checkpoint(run_dir / fixture.name)
    saved = json.loads(checkpoint.meta["config"])
    assert "schema" not in saved and saved["num_envs"] == 8 and saved["tf_threads"] == 1
    config = checkpoint.config
    assert (config.hidden_size, config.mlp_layers, config.replay_capacity) == (8, 1, 100)
    assert (config.num_envs, config.tf_threads) == (64, 0)
    assert checkpoint.step == 4
    config = config.replace(num_steps=8, num_games=16, num_envs=8, jit_compile=False)
    run = SynchronousRun(PLUGIN, config, run_dir, checkpoint, progress_bars=False, log=quiet)
    assert run.replay.total_games == 8
    run.run()
    resumed = load_checkpoint(run_dir)
    assert (resumed.step, resumed.meta["games_played"]) == (8, 16)
    assert json.loads(resumed.meta["config"])["schema"] == 2
