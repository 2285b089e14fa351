import subprocess
import sys

import pytest
import tensorflow as tf

from games.tictactoe import make_config
from muzero.runtime import configure_tensorflow

SCRIPT = """
import tensorflow as tf
from games.tictactoe import make_config
from muzero.runtime import configure_tensorflow
configure_tensorflow(make_config().replace(tf_threads=1))
tf.constant(1.0) + 1.0
print(tf.config.threading.get_intra_op_parallelism_threads())
"""


def test_tf_threads_apply_in_a_fresh_process():
    output = subprocess.run([sys.executable, "-c", SCRIPT], check=True, capture_output=True,
                            text=True).stdout
    assert output.split()[-1] == "1"


def test_tf_threads_after_start_up_fail_clearly():
    tf.constant(1.0) + 1.0  # TensorFlow is running in this process now
    wanted = tf.config.threading.get_intra_op_parallelism_threads() + 3
    with pytest.raises(RuntimeError, match=f"tf_threads={wanted} must be set before TensorFlow"):
        configure_tensorflow(make_config().replace(tf_threads=wanted))
    configure_tensorflow(make_config())  # 0 means: leave TensorFlow's default alone
