"""What TensorBoard would show: the tags of every event file under a folder."""

from pathlib import Path

import tensorflow as tf


def tags_in(folder: Path) -> set[str]:
    tags = set()
    for event_file in Path(folder).rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    return tags
