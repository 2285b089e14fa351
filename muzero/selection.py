"""Which checkpoint is a run's agent: the best evaluated one, not merely the last.

Training can make an agent worse: CartPole's seed 1 scored 500.0 at its half-way checkpoint and
222.2 at the end (docs/experiments.md). So a run scores every evaluated checkpoint and keeps the
best as its agent (the run folder's `agent` file names it; `evaluate`, `play` and `load_agent`
use it). The score reads only the game's standard evaluation, so the rule needs no knowledge of
any one game:
- one player: the mean return;
- several players: the worst points rate (a win 1, a draw 1/2) over every opponent and every
  agent seat. An agent is as strong as its weakest matchup, and a mean would let wins against a
  weak opponent pay for losses against a strong one.
A tie goes to the later checkpoint: the same measured strength with more training behind it.
The score that chose a checkpoint is biased upwards (the best of several noisy measurements):
re-evaluate the agent with another seed for an unbiased figure.
"""

from __future__ import annotations

from dataclasses import dataclass

BEST = "best"
LAST = "last"


def agent_score(evaluation: dict) -> float:
    """One number from an evaluation (`muzero.evaluation.evaluate`'s dict): higher is better."""
    if "returns" in evaluation:
        return float(evaluation["returns"]["mean"])
    rates = [(seat["wins"] + 0.5 * seat["draws"]) / games
             for seats in evaluation["matches"].values() for seat in seats
             if (games := seat["wins"] + seat["draws"] + seat["losses"]) > 0]
    if not rates:
        raise ValueError("an evaluation without games cannot be scored")
    return min(rates)


@dataclass
class AgentSelection:
    """The run's agent so far: its step and score (restored from a checkpoint on resume)."""

    rule: str = BEST
    step: int | None = None
    score: float | None = None
    candidates: int = 0  # evaluated checkpoints considered

    def consider(self, step: int, evaluation: dict | None) -> bool:
        """Whether the checkpoint of `step` becomes the agent. Unevaluated checkpoints (no
        evaluation games) and the rule `last` always do."""
        if evaluation is None or self.rule == LAST:
            self.step, self.score = step, None
            return True
        score = agent_score(evaluation)
        self.candidates += 1
        if self.score is None or score >= self.score:
            self.step, self.score = step, score
            return True
        return False

    def state(self) -> dict:
        return {"step": self.step, "score": self.score, "candidates": self.candidates}

    @classmethod
    def restored(cls, rule: str, state: dict | None) -> AgentSelection:
        state = state or {}
        return cls(rule, state.get("step"), state.get("score"), int(state.get("candidates", 0)))
