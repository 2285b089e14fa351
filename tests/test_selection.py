"""Agent selection: the score of an evaluation, the choice between checkpoints, and the run
folder's `agent` file surviving the pruning of old checkpoints."""

import numpy as np
import pytest

from muzero.checkpoint import AGENT, LATEST, CheckpointError, load_checkpoint, save_checkpoint
from muzero.config import Config
from muzero.selection import AgentSelection, agent_score


def seats(*records):
    return [{"wins": w, "draws": d, "losses": lost} for w, d, lost in records]


def match_evaluation(**matches):
    return {"matches": matches, "summary": "..."}


def test_the_score_of_a_board_game_is_its_weakest_matchup():
    evaluation = match_evaluation(random=seats((10, 0, 0), (8, 2, 0)),
                                  minimax=seats((0, 10, 0), (0, 6, 4)))
    assert agent_score(evaluation) == pytest.approx(0.3)  # minimax, second seat: 6 draws of 10
    # wins against a weak opponent cannot pay for a loss against a strong one
    worse = match_evaluation(random=seats((10, 0, 0), (10, 0, 0)),
                             minimax=seats((0, 10, 0), (0, 5, 5)))
    assert agent_score(worse) < agent_score(evaluation)


def test_the_score_of_a_single_player_game_is_its_mean_return():
    assert agent_score({"returns": {"mean": 222.5, "stderr": 9.0}, "summary": ""}) == 222.5


def test_an_evaluation_without_games_cannot_be_scored():
    with pytest.raises(ValueError, match="without games"):
        agent_score(match_evaluation(random=seats((0, 0, 0))))


def returns(mean):
    return {"returns": {"mean": mean}}


def test_best_keeps_the_highest_score_and_the_later_checkpoint_on_ties():
    selection = AgentSelection("best")
    chosen = [selection.consider(step, returns(mean))
              for step, mean in [(10, 20.0), (20, 500.0), (30, 222.0), (40, 500.0)]]
    assert chosen == [True, True, False, True]
    assert (selection.step, selection.score, selection.candidates) == (40, 500.0, 4)
    restored = AgentSelection.restored("best", selection.state())
    assert restored == selection


def test_last_and_unevaluated_checkpoints_always_become_the_agent():
    last = AgentSelection("last")
    assert last.consider(10, returns(500.0)) and last.consider(20, returns(1.0))
    assert last.step == 20
    unevaluated = AgentSelection("best")
    assert unevaluated.consider(10, None) and unevaluated.consider(20, None)
    assert unevaluated.step == 20 and unevaluated.candidates == 0


CONFIG = Config(game="tictactoe")


def write(run_dir, step, agent_step):
    return save_checkpoint(run_dir, step, {"config": CONFIG.to_json(), "game": "tictactoe"},
                           lambda path: path.write_bytes(b"weights"), [np.arange(3.0)],
                           {"priorities": np.ones(4)}, keep=2, agent_step=agent_step)


def test_the_agent_checkpoint_outlives_pruning_and_is_what_a_run_folder_loads(tmp_path):
    write(tmp_path, 1, agent_step=1)
    for step in (2, 3, 4):
        write(tmp_path, step, agent_step=1)
    assert sorted(path.name for path in tmp_path.glob("step-*")) == [
        "step-000001", "step-000003", "step-000004"]
    assert load_checkpoint(tmp_path, AGENT).step == 1
    assert load_checkpoint(tmp_path).step == 4  # --resume continues from the latest
    write(tmp_path, 5, agent_step=5)  # a better one: the old agent is pruned like any other
    assert sorted(path.name for path in tmp_path.glob("step-*")) == ["step-000004",
                                                                     "step-000005"]
    assert load_checkpoint(tmp_path, AGENT).step == 5


def test_a_run_folder_without_an_agent_file_falls_back_to_its_latest(tmp_path):
    write(tmp_path, 7, agent_step=None)
    (tmp_path / AGENT).unlink()  # a run written before agent selection
    assert (tmp_path / LATEST).is_file()
    assert load_checkpoint(tmp_path, AGENT).step == 7


def test_an_agent_file_naming_a_missing_checkpoint_fails_clearly(tmp_path):
    write(tmp_path, 7, agent_step=None)
    (tmp_path / AGENT).write_text("step-000003\n")
    with pytest.raises(CheckpointError, match="names 'step-000003'"):
        load_checkpoint(tmp_path, AGENT)


def test_the_run_names_its_agent_and_what_chose_it(tmp_path):
    from muzero.commands import agent_line

    for step, mean in ((1, 500.0), (2, 222.0)):
        save_checkpoint(tmp_path, step, {"config": CONFIG.to_json(), "game": "tictactoe",
                                         "evaluation": {"summary": f"return {mean}"}},
                        lambda path: path.write_bytes(b"weights"), [np.arange(3.0)],
                        {"priorities": np.ones(4)}, agent_step=1)
    selection = AgentSelection("best", 1, 500.0, candidates=2)
    assert agent_line(tmp_path, selection) == (
        "agent: step-000001, the best of 2 evaluated checkpoints (chosen on: return 500.0; "
        "evaluate it with another --seed for an unbiased figure)")
    write(tmp_path, 3, agent_step=None)
    assert agent_line(tmp_path, AgentSelection("last", 3)) == (
        "agent: step-000003 (the last checkpoint)")
