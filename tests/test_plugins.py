import sys
import textwrap

import numpy as np
import pytest

from muzero.plugins import UnknownGameError, available_games, load_game


def test_built_in_games_are_listed_and_load():
    assert {"tictactoe", "onearmbandit"} <= set(available_games())
    plugin = load_game("tictactoe")
    game = plugin.make_game(plugin.make_config(), np.random.default_rng(0))
    assert game.num_players == 2 and {"minimax", "random"} <= set(plugin.opponents)
    assert load_game("onearmbandit").reference_value is not None


def test_unknown_game_lists_the_available_ones():
    with pytest.raises(UnknownGameError, match="unknown game 'chess'.*onearmbandit, tictactoe"):
        load_game("chess")


def test_unknown_dotted_module_is_reported():
    with pytest.raises(UnknownGameError, match="no module 'nopkg.nogame'"):
        load_game("nopkg.nogame")


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    package = tmp_path / "mygames"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "coin.py").write_text(textwrap.dedent('''
        import numpy as np
        from muzero import Config, Game

        class Coin(Game):
            num_players, num_actions, observation_shape = 1, 2, (1,)
            def __init__(self): self.reset()
            def reset(self): self.done = False
            def legal_actions(self): return np.full(2, not self.done)
            def to_play(self): return 0
            def terminal(self): return self.done
            def observation(self): return np.zeros(1, np.float32)
            def render(self): return "coin"
            def _apply(self, action):
                self.done = True
                return np.array([float(action)], np.float32)

        def make_config(): return Config(game="mygames.coin", network="mlp")
        def make_game(config, rng): return Coin()
    '''))
    (package / "broken.py").write_text("import numpy_does_not_exist\n")
    (package / "notagame.py").write_text("def make_config(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [name for name in sys.modules if name.startswith("mygames")]:
        del sys.modules[name]


def test_user_game_loads_by_module_path(user_package):
    plugin = load_game("mygames.coin")
    game = plugin.make_game(plugin.make_config(), np.random.default_rng(0))
    assert game.step(1).tolist() == [1.0] and game.terminal()
    assert plugin.opponents == {} and plugin.reference_value is None


def test_module_without_the_game_functions_is_rejected(user_package):
    with pytest.raises(UnknownGameError, match="not a game: it lacks make_game"):
        load_game("mygames.notagame")


def test_a_game_whose_own_import_fails_shows_the_real_error(user_package):
    with pytest.raises(ModuleNotFoundError, match="numpy_does_not_exist"):
        load_game("mygames.broken")
