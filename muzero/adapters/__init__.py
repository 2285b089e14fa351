"""Games from the field's environment libraries, without a game file: `--game gym:ENV_ID` runs a
Gymnasium environment and `--game spiel:NAME` an OpenSpiel game, with hyper-parameters derived
from what the environment declares (`defaults.py`)."""
