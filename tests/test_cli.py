import os
import subprocess
import sys

import pytest
from server_helpers import free_port

from games.tictactoe import make_config
from muzero.__main__ import COMMANDS, build_parser, main
from muzero.checkpoint import save_checkpoint
from muzero.commands import build_config
from muzero.play import play_in_terminal
from muzero.plugins import load_game
from muzero.tensorflow_import import without_native_notices


@pytest.mark.parametrize("argv", [["--help"], ["server", "--help"], ["selfplay", "--help"],
                                  ["train", "--help"], ["upload", "--help"],
                                  ["evaluate", "--help"], ["play", "--help"]])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_help_answers_without_loading_tensorflow():
    """Parsing the command line, --help and usage errors need no TensorFlow (4 s to load)."""
    probe = "import sys, muzero.__main__; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], timeout=60).returncode == 0


def test_a_command_prints_no_tensorflow_notices():
    """TensorFlow 2.19-2.21 prints its import notices whatever TF_CPP_MIN_LOG_LEVEL says: a
    command's standard error holds only what muzero says."""
    result = subprocess.run([sys.executable, "-m", "muzero", "evaluate", "--checkpoint",
                             "/no/such/run"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == "muzero: error: /no/such/run: no such checkpoint or run folder\n"


def test_the_python_api_loads_tensorflow_without_its_notices():
    """`from muzero import load_agent` (the README's API, the benchmark scripts) prints none of
    TensorFlow's notices either, at import or at its first compiled call, with
    TF_CPP_MIN_LOG_LEVEL unset as in a user's shell."""
    environment = {name: value for name, value in os.environ.items()
                   if name != "TF_CPP_MIN_LOG_LEVEL"}
    script = ("from muzero import load_agent; import tensorflow as tf; "
              "print(float(tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, env=environment)
    assert (result.returncode, result.stdout, result.stderr) == (0, "2.0\n", "")


def test_held_back_notices_leave_every_other_line_in_order(capfd):
    with without_native_notices(("notice",)):
        os.write(2, b"a native notice\nfirst line\n")
        os.write(2, b"second line\nanother notice, unterminated")
    assert capfd.readouterr().err == "first line\nsecond line\n"


def test_unknown_game_exits_with_the_list(capsys):
    assert main(["--game", "chess", "--synchronous"]) == 2
    assert "available games: onearmbandit, tictactoe" in capsys.readouterr().err.lower()


def test_bad_hyper_parameter_exits_naming_it(capsys):
    assert main(["--game", "tictactoe", "--synchronous", "--num-simulations", "0"]) == 2
    assert "'num_simulations'" in capsys.readouterr().err


def test_missing_mode_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        main(["--game", "tictactoe"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("argv, expected", [
    (["--game", "tictactoe", "--server", "runs/ttt"],
     {"command": "server", "data_dir": "runs/ttt", "game": "tictactoe"}),
    (["--game", "tictactoe", "--client", "box:5000", "--self-play", "32", "--tf-threads=1"],
     {"command": "selfplay", "server": "box:5000", "num_envs": 32, "tf_threads": 1}),
    (["--game", "tictactoe", "--client=box", "--train", "20"],
     {"command": "train", "server": "box", "num_eval_games": 20}),
])
def test_seed_spellings_become_the_commands(argv, expected, monkeypatch):
    seen = {}
    monkeypatch.setitem(COMMANDS, expected["command"],
                        lambda arguments: seen.update(vars(arguments)) or 0)
    assert main(argv) == 0
    for name, value in expected.items():
        assert seen[name] == value, name


def test_client_without_a_role_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        main(["--client", "box"])
    assert exit_info.value.code == 2


def test_server_on_a_new_folder_needs_a_game(tmp_path, capsys):
    assert main(["server", "--data-dir", str(tmp_path / "new"), "--port", str(free_port())]) == 2
    assert "give --game NAME" in capsys.readouterr().err


def test_play_against_minimax_in_the_terminal():
    typed = iter(["oops", "4", "4", "0", "8", "2", "6", "1", "3", "5", "7"])
    shown = []
    config = make_config().replace(seed=5)
    totals = play_in_terminal(load_game("tictactoe"), config, "minimax", 0,
                              read=lambda prompt: next(typed), write=shown.append)
    assert totals[0] <= 0  # nobody beats minimax
    assert "not a number: 'oops'" in shown
    assert any("minimax plays" in line for line in shown)


def test_play_rejects_unknown_opponent_and_seat():
    with pytest.raises(ValueError, match="unknown opponent 'god'.*minimax, random"):
        play_in_terminal(load_game("tictactoe"), make_config(), "god", 0)
    with pytest.raises(ValueError, match="seat 2 is out of range"):
        play_in_terminal(load_game("tictactoe"), make_config(), "random", 2)


def test_flags_override_the_game_defaults():
    arguments = build_parser().parse_args(
        ["--game", "onearmbandit", "--synchronous", "--jit-compile", "false", "--envs", "8",
         "--game-options", '{"horizon": 5, "safe_reward": 0.5, "success_probability": null}',
         "--selection-rule", "puct"])
    config = build_config(arguments)
    assert (config.jit_compile, config.num_envs, config.selection_rule) == (False, 8, "puct")
    assert config.game_options["horizon"] == 5 and config.network == "mlp"  # the game's default


@pytest.mark.parametrize("flag, value", [("--jit-compile", "maybe"), ("--game-options", "{bad"),
                                         ("--envs", "many")])
def test_malformed_flag_values_are_usage_errors(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--game", "tictactoe", "--synchronous", flag, value])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--game", "../etc", "--synchronous"], "unknown game '../etc': a game is a built-in name"),
    (["--game", "tictactoe", "--synchronous", "--resume", "/nowhere"],
     "/nowhere: no such checkpoint or run folder"),
    (["evaluate", "--checkpoint", "x.weights.h5"], "x.weights.h5: no such checkpoint"),
])
def test_bad_paths_get_clear_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("value, message", [
    ("{bad", "expected a JSON object such as"),
    ("[1, 2]", "expected a JSON object, got '[1, 2]'"),
])
def test_game_options_must_be_a_json_object(value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--game", "onearmbandit", "--synchronous", "--game-options", value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_bad_game_option_names_no_run_folder_and_leaves_none(tmp_path, capsys):
    assert main(["--game", "onearmbandit", "--synchronous", "--checkpoint-dir", str(tmp_path),
                 "--game-options", '{"horizon": -3}']) == 2
    err = capsys.readouterr().err
    assert "onearmbandit option 'horizon' must be an integer >= 1, got -3" in err
    assert "run folder:" not in err and not any(tmp_path.iterdir())


def test_a_new_run_never_writes_into_a_run_folder_that_holds_files(tmp_path, capsys):
    """A second run under the same --run would overwrite the first one's checkpoints."""
    run_dir = tmp_path / "tictactoe" / "mine"
    save_checkpoint(run_dir, 7, {"config": make_config().to_json(), "game": "tictactoe"},
                    lambda path: path.write_bytes(b"weights"), [], {})
    before = sorted((path.name, path.stat().st_mtime_ns) for path in run_dir.rglob("*"))
    argv = ["--game", "tictactoe", "--synchronous", "--checkpoint-dir", str(tmp_path),
            "--run", "mine"]
    assert main(argv) == 2
    assert (f"run folder {run_dir} already holds a run of game 'tictactoe' at step 7: continue "
            f"it with --resume {run_dir}") in capsys.readouterr().err
    assert sorted((path.name, path.stat().st_mtime_ns) for path in run_dir.rglob("*")) == before
    (tmp_path / "tictactoe" / "other").mkdir()
    (tmp_path / "tictactoe" / "other" / "evaluations.jsonl").write_text("{}\n")
    assert main(argv[:-1] + ["other"]) == 2
    assert "already holds files but no checkpoint" in capsys.readouterr().err
    (tmp_path / "tictactoe" / "file").write_text("")
    assert main(argv[:-1] + ["file"]) == 2
    assert "is a file, not a run folder" in capsys.readouterr().err
