import json

import numpy as np
import pytest

from muzero.checkpoint import CheckpointError, load_checkpoint, resolve, save_checkpoint
from muzero.config import Config

CONFIG = Config(game="tictactoe")


def write(run_dir, step, fail_after_weights=False):
    def save_weights(path):
        path.write_bytes(b"weights")
        if fail_after_weights:
            raise KeyboardInterrupt  # killed in the middle of writing a checkpoint

    return save_checkpoint(run_dir, step, {"config": CONFIG.to_json(), "game": "tictactoe"},
                           save_weights, [np.arange(3.0)], {"priorities": np.ones(4)})


def test_a_save_interrupted_midway_leaves_the_previous_checkpoint(tmp_path):
    write(tmp_path, 10)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path, 20, fail_after_weights=True)
    assert resolve(tmp_path).name == "step-000010"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["agent", "latest", "step-000010"]
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.step == 10 and checkpoint.config == CONFIG
    np.testing.assert_array_equal(checkpoint.optimizer_state()[0], np.arange(3.0))


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    for step in (1, 2, 3):
        write(tmp_path, step)
    assert sorted(path.name for path in tmp_path.glob("step-*")) == ["step-000002",
                                                                     "step-000003"]
    assert load_checkpoint(tmp_path).step == 3


def test_sidecar_problems_are_named(tmp_path):
    folder = write(tmp_path, 5)
    sidecar = folder / "checkpoint.json"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(CheckpointError, match="format 99"):
        load_checkpoint(folder)
    sidecar.write_text(json.dumps({key: value for key, value in meta.items() if key != "step"}))
    with pytest.raises(CheckpointError, match="no 'step' entry"):
        load_checkpoint(folder)
    sidecar.write_text(json.dumps({**meta, "config": '{"num_simulations": 0}'}))
    with pytest.raises(CheckpointError, match="bad config"):
        load_checkpoint(folder)
    (tmp_path / "latest").write_text("step-000999\n")
    with pytest.raises(CheckpointError, match="names 'step-000999'"):
        load_checkpoint(tmp_path)


def test_pickled_arrays_are_refused(tmp_path):
    folder = write(tmp_path, 5)
    np.savez(folder / "optimizer.npz", v0000=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="optimizer.npz: corrupt"):
        load_checkpoint(folder).optimizer_state()
