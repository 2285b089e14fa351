import dataclasses
import json

import pytest

from games.tictactoe import make_config
from muzero.config import RUNTIME_FIELDS, SCHEMA, Config, ConfigError
from muzero.search.tree import SearchSettings


@pytest.mark.parametrize("field, value, message", [
    ("num_simulations", 0, "must be >= 1"),
    ("num_steps", 0, "must be >= 1"),
    ("discount", 1.5, r"must be in \[0.0, 1.0\]"),
    ("selection_rule", "greedy", "must be one of ucb, puct"),
    ("q_normalisation", "siblings", "must be one of tree, node"),
    ("network", "transformer", "must be one of resnet, mlp"),
    ("root_exploration_fraction", -0.1, r"must be in \[0.0, 1.0\]"),
    ("pb_c_base", 0.0, "must be > 0"),
    ("temperature", float("nan"), "must be finite"),
    ("num_envs", 2.5, "must be of type int"),
    ("num_envs", True, "must be of type int"),
    ("seed", "1", "must be of type int"),
    ("game", " ", "must not be empty"),
    ("game_options", {1: 2}, "keys must be strings"),
    ("game_options", {"f": object()}, "must be JSON-serialisable"),
    ("node_span_floor", -0.1, "must be >= 0"),
    ("node_span_floor", 0.3, "applies to q_normalisation 'node' only"),
])
def test_bad_values_fail_naming_the_field(field, value, message):
    with pytest.raises(ConfigError, match=f"'{field}' {message}"):
        make_config().replace(**{field: value})


@pytest.mark.parametrize("search", ["muzero", "gumbel"])
def test_node_bounds_reach_either_search(search):
    settings = SearchSettings.from_config(
        make_config().replace(search=search, q_normalisation="node"), add_noise=True)
    assert settings.node_bounds and settings.gumbel == (search == "gumbel")


def test_the_node_span_floor_reaches_the_search_and_never_falls_to_zero():
    node = make_config().replace(q_normalisation="node")
    assert SearchSettings.from_config(node.replace(node_span_floor=0.3)).node_span_floor == 0.3
    assert SearchSettings.from_config(node).node_span_floor > 0.0  # a division, never by zero


def test_ints_are_accepted_for_float_fields():
    assert make_config().replace(discount=1).discount == 1


def test_unknown_fields_are_rejected():
    with pytest.raises(ConfigError, match="unknown config field.*learning_rat"):
        make_config().replace(learning_rat=0.1)
    with pytest.raises(ConfigError, match="unknown config field.*colour"):
        Config.from_dict({"game": "tictactoe", "colour": "red"})


def test_json_round_trip_is_exact():
    config = make_config().replace(discount=0.997, game_options={"a": [1, 2], "b": None},
                                   selection_rule="puct", hidden_size=7)
    assert Config.from_json(config.to_json()) == config


def test_bad_json_is_reported():
    with pytest.raises(ConfigError, match="not valid JSON"):
        Config.from_json("{nope")
    with pytest.raises(ConfigError, match="must be an object"):
        Config.from_json(json.dumps([1, 2]))
    with pytest.raises(ConfigError, match="'num_simulations'"):
        Config.from_json(json.dumps({"game": "x", "num_simulations": -3}))


def test_config_is_immutable():
    with pytest.raises(AttributeError):
        make_config().discount = 0.5


def schema_1_document(config: Config) -> dict:
    """What a checkpoint of schema 1 held: every field, runtime options too, no schema number."""
    return dataclasses.asdict(config)


def test_schema_1_config_without_a_later_field_keeps_the_old_behaviour():
    """A checkpoint from before `residual_dynamics` existed was trained with a plain dynamics."""
    data = schema_1_document(make_config())
    del data["residual_dynamics"]
    assert Config.from_json(json.dumps(data)).residual_dynamics is False
    assert make_config().residual_dynamics is True


def test_saved_config_holds_the_schema_and_hyper_parameters_only():
    config = make_config().replace(num_envs=8, tf_threads=1, jit_compile=False, seed=5)
    saved = json.loads(config.to_json())
    assert saved["schema"] == SCHEMA
    assert not set(saved) & RUNTIME_FIELDS
    assert {"num_envs", "tf_threads", "jit_compile", "inference_wait_ms"} <= RUNTIME_FIELDS
    loaded = Config.from_json(config.to_json())
    assert loaded.seed == 5 and loaded.hyper_parameters() == config.hyper_parameters()
    # runtime options: this machine's (the defaults here), not the saved run's
    assert (loaded.num_envs, loaded.tf_threads, loaded.jit_compile) == (64, 0, True)


def test_schema_1_config_migrates_dropping_its_runtime_options():
    old = schema_1_document(make_config().replace(num_envs=8, tf_threads=1, hidden_size=24))
    loaded = Config.from_json(json.dumps(old))
    assert loaded.hidden_size == 24
    assert (loaded.num_envs, loaded.tf_threads) == (64, 0)


@pytest.mark.parametrize("document, message", [
    ({"schema": SCHEMA + 1, "game": "tictactoe"}, "newer than this version"),
    ({"schema": "2", "game": "tictactoe"}, "whole number"),
    ({"schema": 0, "game": "tictactoe"}, "whole number"),
    ({"schema": SCHEMA, "game": "tictactoe", "num_envs": 8}, "does not save runtime options"),
])
def test_bad_saved_schemas_fail_with_a_message(document, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_json(json.dumps(document))


def test_the_configuration_reference_in_docs_is_current():
    from pathlib import Path

    from muzero.config_flags import markdown_reference

    page = Path(__file__).parents[1] / "docs" / "configuration.md"
    assert page.read_text() == markdown_reference(), (
        "docs/configuration.md is stale: regenerate it with the command at its top")
