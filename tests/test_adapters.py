"""Gymnasium and OpenSpiel environments as games, against the real libraries: the game contract,
truncation, refusals with messages, defaults derived from the environment, and the commands
(train, checkpoint, evaluate, play, a server upload) with adapter games."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.exact_rates import as_agent_game, boards_of, reachable_positions
from games.tictactoe import TicTacToe
from muzero.__main__ import build_parser, main
from muzero.adapters.defaults import EnvironmentFacts, derive_config
from muzero.adapters.gym import UnsupportedEnvironmentError
from muzero.adapters.spiel import PlayerPlanes
from muzero.batching.inference import inference_for_game
from muzero.batching.selfplay import VectorisedSelfPlay
from muzero.checkpoint import AGENT, load_checkpoint
from muzero.commands import build_config
from muzero.evaluation import play_match
from muzero.plugins import UnknownGameError, load_game
from muzero.records import check_time_limit
from muzero.replay import ReplayBuffer

CARTPOLE = load_game("gym:CartPole-v1")
SPIEL_TICTACTOE = load_game("spiel:tic_tac_toe")
TINY = dict(hidden_size=16, mlp_layers=1, jit_compile=False, num_simulations=4, batch_size=16,
            num_envs=4, games_per_iteration=4, num_eval_games=2, replay_capacity=4000)


def random_play(game, rng, moves=10_000):
    """Play random legal moves to the end; the rewards of every move [T, P]."""
    rewards = []
    while not game.terminal() and len(rewards) < moves:
        rewards.append(game.step(int(rng.choice(np.flatnonzero(game.legal_actions())))))
    return np.array(rewards)


# ----- Gymnasium -----

def test_cartpole_follows_the_game_contract_and_is_reproducible():
    config = CARTPOLE.make_config()
    first = CARTPOLE.make_game(config, np.random.default_rng(7))
    second = CARTPOLE.make_game(config, np.random.default_rng(7))
    assert (first.num_players, first.num_actions, first.observation_shape) == (1, 2, (4,))
    assert first.time_limit == 500 and CARTPOLE.reward_threshold == 475.0
    assert first.observation().dtype == np.float32
    np.testing.assert_array_equal(first.observation(), second.observation())  # same draw
    rewards = random_play(first, np.random.default_rng(0))
    assert first.terminal() and not first.truncated() and (rewards == 1.0).all()
    assert not first.legal_actions().any()
    first.reset()
    assert not np.array_equal(first.observation(), second.observation())  # a new episode's seed


def test_a_time_limit_cuts_the_episode_and_its_targets_bootstrap():
    """CartPole cut after 5 moves (the pole cannot fall that soon): self-play records the game as
    truncated, and its value targets lean on the last search value instead of ending at 0."""
    config = CARTPOLE.make_config().replace(game_options={"max_episode_steps": 5}, **TINY)
    game = CARTPOLE.make_game(config, np.random.default_rng(0))
    assert game.time_limit == 5
    random_play(game, np.random.default_rng(0))
    assert game.terminal() and game.truncated()
    model = inference_for_game(CARTPOLE, config)
    selfplay = VectorisedSelfPlay(CARTPOLE, config, model, 2, np.random.default_rng(0))
    records = selfplay.play(2)
    assert all(record.truncated and len(record) == 5 for record in records)
    replay = ReplayBuffer(config.replace(td_steps=10), (4,), 2, 1, np.random.default_rng(0))
    replay.add_games(records)
    last = records[0].root_values[-1, 0]
    discount = config.discount
    expected = 1 + discount * 1 + discount ** 2 * 1 + discount ** 3 * 1 + discount ** 4 * last
    assert replay.values[0, 0] == pytest.approx(expected, rel=1e-5)
    assert replay.values[4, 0] == pytest.approx(last, rel=1e-6)
    batch = replay.sample(64)
    assert (batch.value_mask == 0).any() and (batch.reward_mask[:, 1:] == 0).any()
    check_time_limit(5, records[0])
    with pytest.raises(ValueError, match="cut by the time limit of 7 moves after 5"):
        check_time_limit(7, records[0])
    with pytest.raises(ValueError, match="more than the time limit of 4"):
        check_time_limit(4, records[0])


@pytest.mark.parametrize("name, message", [
    ("gym:Pendulum-v1", r"action space Box\(-2.0, 2.0, \(1,\), float32\) is not supported"),
    ("gym:Blackjack-v1", r"observation space Tuple\(.*\) is not supported"),
])
def test_unsupported_spaces_are_refused_at_start_up(name, message):
    with pytest.raises(UnsupportedEnvironmentError, match=message):
        load_game(name).make_config()


@pytest.mark.parametrize("name, message", [
    ("gym:NoSuchEnv-v0", "unknown game 'gym:NoSuchEnv-v0'"),
    ("spiel:no_such_game", "OpenSpiel has no game 'no_such_game'"),
])
def test_unknown_environments_are_refused(name, message):
    with pytest.raises(UnknownGameError, match=message):
        load_game(name)


def test_cartpole_defaults_are_derived_and_flags_override_them():
    arguments = build_parser().parse_args(["--game", "gym:CartPole-v1", "--synchronous",
                                           "--num-simulations", "7"])
    config = build_config(arguments)
    assert (config.network, config.discount, config.td_steps) == ("mlp", 0.997, 50)
    assert config.temperature_schedule == "paper"
    assert config.reanalyse_ratio == 1.0
    assert config.agent_averaging == 1000  # the agent: a moving average (docs/experiments.md)
    assert config.random_move_probability == 0.0  # one player: no weak opponent to meet
    assert config.scalar_support_size == 18  # h(333) = 17.6: returns up to 1 / (1 - 0.997)
    assert config.num_simulations == 7
    options = build_config(build_parser().parse_args(
        ["--game", "gym:CartPole-v1", "--game-options", '{"max_episode_steps": 50}']))
    assert options.scalar_support_size == 7  # h(50) = 6.2: the time limit bounds the return
    assert options.freezing_moves == 50


def test_board_game_defaults_sample_an_opening_train_longer_and_keep_a_recent_window():
    tictactoe = build_config(build_parser().parse_args(["--game", "spiel:tic_tac_toe"]))
    assert (tictactoe.discount, tictactoe.td_steps, tictactoe.freezing_moves) == (1.0, 9, 4)
    assert tictactoe.samples_per_position == 42  # outcome targets: more passes than 16
    assert tictactoe.num_steps == math.ceil(tictactoe.num_games * 42 / 256)
    assert tictactoe.temperature_schedule == "constant"  # sampled moves are the paper's rule
    assert tictactoe.replay_capacity == tictactoe.num_games // 4  # a quarter of the run
    assert tictactoe.reanalyse_ratio == 0.0  # measured no better (docs/experiments.md)
    assert tictactoe.agent_averaging == 0  # mixed on spiel:tic_tac_toe: the trained weights
    assert tictactoe.random_move_probability == 0.15  # coverage (docs/experiments.md)
    four = build_config(build_parser().parse_args(["--game", "spiel:connect_four"]))
    assert four.freezing_moves == 21  # the paper's 30, at most half of a 42-move game
    chess_like = derive_config("x", {}, EnvironmentFacts((10,), 5, 2, 500, True, (-1.0, 1.0)))[0]
    assert chess_like.freezing_moves == 30  # a long game samples the paper's opening


# ----- OpenSpiel -----

def test_spiel_tictactoe_agrees_with_the_native_game():
    """Random games played in both: the same legal moves, rewards and end, move by move."""
    rng = np.random.default_rng(0)
    config = SPIEL_TICTACTOE.make_config()
    for _ in range(50):
        spiel, native = SPIEL_TICTACTOE.make_game(config, rng), TicTacToe()
        while not native.terminal():
            assert not spiel.terminal()
            np.testing.assert_array_equal(spiel.legal_actions(), native.legal_actions())
            assert spiel.to_play() == native.to_play()
            action = int(rng.choice(np.flatnonzero(native.legal_actions())))
            np.testing.assert_array_equal(spiel.step(action), native.step(action))
        assert spiel.terminal() and not spiel.legal_actions().any()


def test_spiel_board_game_defaults():
    config, lines = SPIEL_TICTACTOE.default_config()
    assert (config.discount, config.td_steps, config.scalar_support_size) == (1.0, 9, 0)
    assert (config.known_value_min, config.known_value_max) == (-1.0, 1.0)
    assert any(line.startswith("discount=1.0, td_steps=9") for line in lines)
    assert set(SPIEL_TICTACTOE.opponents) == {"random", "mcts", "minimax"}


def test_spiel_minimax_is_exact():
    """Against itself every game is drawn; against random play it never loses."""
    config = SPIEL_TICTACTOE.make_config()
    rng = np.random.default_rng(1)
    exact = SPIEL_TICTACTOE.opponents["minimax"](config, rng)
    for seat in (0, 1):
        for _ in range(20):
            game = SPIEL_TICTACTOE.make_game(config, rng)
            total = np.zeros(2)
            while not game.terminal():
                mover = game.to_play()
                action = (exact.select_action(game) if mover == seat
                          else int(rng.choice(np.flatnonzero(game.legal_actions()))))
                total += game.step(action)
            assert total[seat] >= 0
    game = SPIEL_TICTACTOE.make_game(config, rng)
    total = np.zeros(2)
    while not game.terminal():
        total += game.step(exact.select_action(game))
    assert (total == 0).all()


def test_connect_four_chance_and_three_player_games_play_to_the_end():
    rng = np.random.default_rng(3)
    four = load_game("spiel:connect_four")
    game = four.make_game(four.make_config(), rng)
    assert game.observation_shape == (5, 6, 7) and game.num_actions == 7
    assert game.observation().shape == (5, 6, 7)
    rewards = random_play(game, rng)
    assert game.terminal() and rewards.sum(axis=0).sum() == 0  # zero-sum at the end
    assert "mcts" in four.opponents and "minimax" not in four.opponents  # 42 moves: too long
    pig = load_game("spiel:pig")
    config = pig.make_config().replace(game_options={"players": 3, "winscore": 40})
    game = pig.make_game(config, rng)
    assert game.num_players == 3 and not game.replayable_rules
    assert game.chance_reward_bounds == (-1.0, 1.0)
    seen_players = set()
    moves = 0
    while not game.terminal():
        seen_players.add(game.to_play())
        game.step(int(rng.choice(np.flatnonzero(game.legal_actions()))))
        moves += 1
    assert seen_players == {0, 1, 2} and moves < game.time_limit


def test_spiel_observation_is_the_tensor_then_a_plane_per_player_saying_who_moves():
    """Connect four's tensor is absolute (pieces of player 0, of player 1, empty): without the
    planes, who moves would only be implied by the parity of the piece count."""
    import pyspiel
    rng = np.random.default_rng(5)
    four = load_game("spiel:connect_four")
    game = four.make_game(four.make_config(), rng)
    reference = pyspiel.load_game("connect_four").new_initial_state()
    for _ in range(6):
        observation = game.observation()
        mover = game.to_play()
        assert mover == reference.current_player()
        expected = np.asarray(reference.observation_tensor(mover), np.float32).reshape(3, 6, 7)
        np.testing.assert_array_equal(observation[:3], expected)
        np.testing.assert_array_equal(observation[3 + mover], np.ones((6, 7)))
        np.testing.assert_array_equal(observation[3 + (1 - mover)], np.zeros((6, 7)))
        action = int(rng.choice(np.flatnonzero(game.legal_actions())))
        game.step(action)
        reference.apply_action(action)
    three = load_game("spiel:pig")
    config = three.make_config().replace(game_options={"players": 3, "winscore": 40})
    game = three.make_game(config, rng)
    channels = pyspiel.load_game("pig", {"players": 3, "winscore": 40}).observation_tensor_shape()
    assert game.observation_shape == (channels[0] + 3,) + tuple(channels[1:])
    assert game.observation()[channels[0] + game.to_play()].all()
    one = PlayerPlanes((4,), num_players=1)
    assert one.shape == (4,) and one(np.arange(4.0), 0).tolist() == [0, 1, 2, 3]
    vector = PlayerPlanes((4,), num_players=2)
    assert vector(np.arange(4.0), 1).tolist() == [0, 1, 2, 3, 0, 1]


@pytest.mark.parametrize("name, message", [
    ("spiel:kuhn_poker", "imperfect information games are not supported"),
    ("spiel:goofspiel", "simultaneous games are not supported"),
])
def test_unsupported_spiel_games_are_refused(name, message):
    with pytest.raises(UnsupportedEnvironmentError, match=message):
        load_game(name).make_config()


def test_spiel_mcts_opponent_beats_random_play():
    config = SPIEL_TICTACTOE.make_config().replace(game_options={"mcts_simulations": 200})
    rng = np.random.default_rng(0)
    mcts = SPIEL_TICTACTOE.opponents["mcts"](config, rng)
    wins = 0
    for _ in range(10):
        game = SPIEL_TICTACTOE.make_game(config, rng)
        total = np.zeros(2)
        while not game.terminal():
            action = (mcts.select_action(game) if game.to_play() == 0
                      else int(rng.choice(np.flatnonzero(game.legal_actions()))))
            total += game.step(action)
        wins += total[0] > 0
    assert wins >= 8


# ----- the commands with adapter games -----

@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in TINY.items()
             if name not in ("num_envs",)]
    code = main(["--game", "gym:CartPole-v1", "--synchronous", "--checkpoint-dir", str(root),
                 "--run", "tiny", "--envs", "4", "--num-games", "8", "--num-steps", "4",
                 "--checkpoint-interval", "2", "--game-options", '{"max_episode_steps": 30}',
                 *flags])
    assert code == 0
    return root / "gym_CartPole-v1" / "tiny"


def test_cartpole_trains_checkpoints_and_evaluates(cartpole_run, capsys):
    found = load_checkpoint(cartpole_run)
    assert found.config.game == "gym:CartPole-v1" and found.step == 4
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(cartpole_run), "--games", "3"]) == 0
    output = capsys.readouterr().out
    assert output.startswith(f"{load_checkpoint(cartpole_run, AGENT).path} ")  # the run's agent
    assert "agent: mean return" in output and "solved at 475" in output
    assert ", random " in output  # the baseline


def test_spiel_server_checks_uploads(tmp_path):
    """Native-rule replay checks OpenSpiel uploads: a legal game is stored, a doctored one
    (an illegal move) is refused and nothing is stored."""
    from muzero.server import wire
    from muzero.server.storage import Store, StoreError

    config = SPIEL_TICTACTOE.make_config().replace(**TINY)
    store = Store(tmp_path / "data", SPIEL_TICTACTOE, config)
    model = inference_for_game(SPIEL_TICTACTOE, config)
    records = VectorisedSelfPlay(SPIEL_TICTACTOE, config, model, 2,
                                 np.random.default_rng(0)).play(2)
    store.add_games(wire.encode_games(records))
    assert store.stats()["games"] == 2
    actions = records[0].actions.copy()
    actions[1] = actions[0]  # the same cell twice, with legal moves faked to allow it
    doctored = dataclasses.replace(records[0], actions=actions,
                                   legal=np.ones_like(records[0].legal))
    with pytest.raises(StoreError, match="move 1: action .* is not legal"):
        store.add_games(wire.encode_games([doctored]))
    assert store.stats()["games"] == 2


def test_gym_server_refuses_a_false_truncation(tmp_path):
    from muzero.server import wire
    from muzero.server.storage import Store, StoreError

    config = CARTPOLE.make_config().replace(game_options={"max_episode_steps": 5}, **TINY)
    store = Store(tmp_path / "data", CARTPOLE, config)
    model = inference_for_game(CARTPOLE, config)
    record = VectorisedSelfPlay(CARTPOLE, config, model, 1, np.random.default_rng(0)).play(1)[0]
    store.add_games(wire.encode_games([record]))
    short = dataclasses.replace(record, **{name: getattr(record, name)[:3] for name in (
        "observations", "actions", "rewards", "to_play", "root_values", "policies",
        "legal")})
    with pytest.raises(StoreError, match="cut by the time limit of 5 moves after 3"):
        store.add_games(wire.encode_games([short]))
    assert store.stats()["games"] == 1


def test_play_against_an_opponent_in_spiel_tictactoe():
    from muzero.play import play_in_terminal

    typed = iter(str(cell) for cell in [4, 0, 1, 2, 3, 5, 6, 7, 8] * 2)
    shown = []
    totals = play_in_terminal(SPIEL_TICTACTOE, SPIEL_TICTACTOE.make_config(), "minimax", 0,
                              read=lambda prompt: next(typed), write=shown.append)
    assert totals[0] <= 0 and any("minimax plays" in line for line in shown)


def test_an_agent_plays_a_match_in_spiel_tictactoe():
    from muzero.agent import Agent

    config = SPIEL_TICTACTOE.make_config().replace(**TINY)
    agent = Agent(SPIEL_TICTACTOE, config, inference_for_game(SPIEL_TICTACTOE, config))
    result = play_match(agent, SPIEL_TICTACTOE, config, "random", 4)
    assert [seat.games for seat in result.seats] == [2, 2]


def test_discrete_observations_become_one_hot():
    lake = load_game("gym:FrozenLake-v1")
    config = lake.make_config().replace(game_options={"is_slippery": False})
    game = lake.make_game(config, np.random.default_rng(0))
    assert game.observation_shape == (16,) and game.num_actions == 4
    np.testing.assert_array_equal(game.observation(), np.eye(16, dtype=np.float32)[0])
    game.step(2)  # right: from cell 0 to cell 1
    np.testing.assert_array_equal(game.observation(), np.eye(16, dtype=np.float32)[1])


def test_the_command_line_refuses_an_unsupported_environment_by_name(capsys):
    assert main(["--game", "gym:Pendulum-v1", "--synchronous"]) == 2
    error = capsys.readouterr().err
    assert "muzero: error: gym:Pendulum-v1: action space Box" in error
    assert "Discrete" in error  # what is supported


@pytest.mark.parametrize("name", ["spiel:tic_tac_toe", "gym:CartPole-v1"])
def test_dashboard_and_play_api_serve_adapter_games(tmp_path, name):
    """The server's pages and its play API with adapter games: a person's game is played to
    its end by moves through the API (CartPole cut at 8 moves)."""
    from muzero.server.app import create_app
    from muzero.server.storage import Store

    plugin = load_game(name)
    options = {"max_episode_steps": 8} if name.startswith("gym:") else {}
    config = plugin.make_config().replace(game_options=options, **TINY)
    client = create_app(Store(tmp_path / "data", plugin, config)).test_client()
    for page in ("/", "/play", "/api/v1/stats"):
        assert client.get(page).status_code == 200, page
    state = client.post("/api/v1/play", json={"seat": 0}).get_json()
    moves = 0
    while not state["terminal"]:
        legal = [action["action"] for action in state["actions"] if action["legal"]]
        response = client.post(f"/api/v1/play/{state['id']}", json={"action": legal[0]})
        assert response.status_code == 200, response.get_json()
        state = response.get_json()
        moves += 1
    assert moves >= 1 and len(state["totals"]) == plugin.make_game(
        config, np.random.default_rng(0)).num_players


def test_an_adapter_run_resumes_by_its_game_name(cartpole_run):
    """`--resume` without a folder finds the latest run of `gym:CartPole-v1` under its portable
    folder name and continues it."""
    assert main(["--synchronous", "--game", "gym:CartPole-v1", "--resume",
                 "--checkpoint-dir", str(cartpole_run.parent.parent), "--num-steps", "6",
                 "--num-games", "12", "--num-eval-games", "1"]) == 0
    assert load_checkpoint(cartpole_run).step == 6


def test_exact_rates_rebuild_every_tictactoe_position_in_openspiel():
    """benchmarks/exact_rates.py rates spiel:tic_tac_toe agents on native positions rebuilt
    stone by stone: the rebuilt game must have the same legal moves and player to move."""
    agent = SimpleNamespace(config=SPIEL_TICTACTOE.make_config(), plugin=SPIEL_TICTACTOE)
    positions = reachable_positions()
    assert len(positions) == 4520
    for position in positions[::5]:
        game = as_agent_game(agent, position)
        assert not game.terminal() and game.to_play() == position.to_play()
        np.testing.assert_array_equal(game.legal_actions(), position.legal_actions())
        # and the replay's observations read back as the same board, in either game
        for name, seen in (("spiel:tic_tac_toe", game.observation()),
                           ("tictactoe", position.observation())):
            assert tuple(boards_of(seen[None], name)[0]) == position.board


def test_spiel_tictactoe_finds_the_eight_symmetries_of_the_square():
    from games.tictactoe import symmetries as native_symmetries

    config = SPIEL_TICTACTOE.make_config()
    found = {tuple(actions.tolist()) for _, actions in SPIEL_TICTACTOE.symmetries(config)}
    native = {tuple(actions.tolist()) for _, actions in native_symmetries(config)}
    assert len(found) == 8 and found == native


def test_spiel_connect_four_finds_its_mirror_only():
    four = load_game("spiel:connect_four")
    found = [actions.tolist() for _, actions in four.symmetries(four.make_config())]
    assert found == [list(range(7)), list(range(6, -1, -1))]


def test_transformed_samples_are_positions_of_the_game():
    """What the replay buffer trains on: observations and moves put through a found symmetry
    (muzero.symmetry.Augmentation) must be the observations of the game played with the
    transformed moves. Checks the gather convention, not only the discovery."""
    from muzero.symmetry import Augmentation, symmetries_from_plugin

    four = load_game("spiel:connect_four")
    for plugin in (SPIEL_TICTACTOE, four):
        config = plugin.make_config()
        rng = np.random.default_rng(5)
        game = plugin.make_game(config, rng)
        symmetries = symmetries_from_plugin(plugin, config)
        augmentation = Augmentation(symmetries, game.observation_shape, game.num_actions)
        observations, actions = [game.observation()], []
        while not game.terminal():
            actions.append(int(rng.choice(np.flatnonzero(game.legal_actions()))))
            game.step(actions[-1])
            observations.append(game.observation())
        for chosen in range(len(symmetries)):
            which = np.full(len(observations), chosen)
            seen = augmentation.observations(np.array(observations), which)
            moves = augmentation.actions(np.array([actions]), which[:1])[0]
            twin = plugin.make_game(config, rng)
            np.testing.assert_array_equal(twin.observation(), seen[0])
            for move, expected in zip(moves, seen[1:]):
                twin.step(int(move))
                np.testing.assert_array_equal(twin.observation(), expected)


def test_a_symmetry_that_does_not_hold_is_dropped():
    from muzero.adapters.symmetries import action_map, board_transforms, holds

    game = SPIEL_TICTACTOE.make_game(SPIEL_TICTACTOE.make_config(), np.random.default_rng(0))
    transforms = board_transforms(game.observation_shape)
    mirror = transforms[4]  # a reflection
    assert holds(game, mirror, action_map(game, mirror))
    assert not holds(game, mirror, np.arange(9))  # the right board, the wrong moves
    # hex's cells record which edges a stone connects to, so no rotation keeps their meaning
    hex_game = load_game("spiel:hex")
    config = hex_game.make_config().replace(game_options={"board_size": 5})
    assert hex_game.symmetries(config) == []
    pig = load_game("spiel:pig")  # chance nodes: a twin would roll other dice
    assert pig.symmetries(pig.make_config()) == []
