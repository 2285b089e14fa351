"""The exact expected return of a bandit agent, and the decisions where it loses return.

    python benchmarks/bandit_exact.py RUN [RUN ...]

A one-arm-bandit agent is deterministic and its position is the counts (successes, failures,
safe pulls), so its policy is one search per reachable position (1,540 for 20 pulls), and its
expected return follows exactly by dynamic programming: under the uniform prior the next risky
pull pays with the posterior mean (s + 1) / (s + f + 2) (with a fixed `success_probability`, with
that). The evaluation's 5000 episodes estimate the same number with a standard error of about
0.05; this one has none.

Under the prior it also lists the costliest decisions: the chance of reaching the position times
the Bayes value the chosen arm gives up (its Q against the better arm's, both followed by
optimal play). The costs add up to the gap to the Bayes-optimal return, which it also splits
into caution (safe where the risky arm is worth more) and boldness (the reverse). Not a test: a
few seconds per run.

With `--values` it also says why a decision goes wrong: at the decision and at the positions each
arm leads to, the network's value beside the mean of the value targets its checkpoint's replay
buffer holds there (the whole window, then its newer half) and the Bayes value. A network that
tracks the window's mean where that mean sits below Bayes is fitting stale returns of exploring
self-play, not failing to fit (docs/experiments.md, fifteenth session).

With `--plans` it also says whether the run's data held what the agent needed: the exact return
of planning by backward induction on chances estimated four ways: (1) the risky arm's observed
rate per (successes, failures) in the checkpoint's replay buffer (what a learner that knew the
chance depends on those counts alone could get from the run's own pulls), (2) the same rate per
position, safe pulls included (a table with no such knowledge), (3) a small network fitted to
the same pulls by cross-entropy (a chance head of its own, told nothing), and (4) the network's
reward head, its predicted reward of each arm taken as the arm's chance to pay. Planning needs a
chance model MuZero's deterministic dynamics does not have: (1) and (3) say what a learner with
one could reach from the same data, (4) what the network's own reward model is worth
(docs/experiments.md, twenty-first session).
"""

from __future__ import annotations

import argparse
from functools import cache

import numpy as np

from games.onearmbandit import DEFAULT_OPTIONS, RISKY, SAFE, OneArmBandit, _bayes_table
from muzero import load_agent
from muzero.agent import Agent
from muzero.checkpoint import AGENT, load_checkpoint

Counts = tuple[int, int, int]  # risky successes, risky failures, safe pulls


def positions(horizon: int) -> list[Counts]:
    """Every position with a pull left, in order of pulls taken."""
    return [(s, f, t - s - f) for t in range(horizon) for s in range(t + 1)
            for f in range(t - s + 1)]


def game_at(position: Counts, options: dict) -> OneArmBandit:
    """A game standing at `position`, for the agent to search or encode."""
    game = OneArmBandit(np.random.default_rng(0), **options)
    game.successes, game.failures, game.safe_pulls = position
    return game


def encodings(reachable: list[Counts], options: dict) -> np.ndarray:
    """The game's observations of `reachable` positions, stacked for one network call."""
    return np.stack([game_at(position, options).observation() for position in reachable])


def agent_policy(run: str) -> tuple[dict[Counts, int], dict]:
    """The agent's arm in every position with a pull left, and the game options it learned."""
    return policy_of(load_agent(run))


def policy_of(agent: Agent) -> tuple[dict[Counts, int], dict]:
    """`agent_policy` for an agent already loaded."""
    options = {**DEFAULT_OPTIONS, **agent.config.game_options}
    reachable = positions(options["horizon"])
    actions = agent.search_games([game_at(position, options) for position in reachable]).actions
    return dict(zip(reachable, (int(a) for a in actions))), options


def expected_return(policy: dict[Counts, int], options: dict) -> float:
    horizon, safe_reward = options["horizon"], options["safe_reward"]
    fixed = options["success_probability"]

    @cache
    def value(successes: int, failures: int, safe_pulls: int) -> float:
        if successes + failures + safe_pulls == horizon:
            return 0.0
        if policy[(successes, failures, safe_pulls)] != RISKY:
            return safe_reward + value(successes, failures, safe_pulls + 1)
        pays = fixed if fixed is not None else (successes + 1) / (successes + failures + 2)
        return (pays * (1.0 + value(successes + 1, failures, safe_pulls))
                + (1.0 - pays) * value(successes, failures + 1, safe_pulls))

    return value(0, 0, 0)


def stored_target_means(observations: np.ndarray, values: np.ndarray, position_ids: np.ndarray,
                        horizon: int) -> dict[Counts, tuple[float, int, float, int]]:
    """Per position: (mean value target, rows, the same over the newer half of the rows, rows
    there), from a replay buffer's arrays (observations [N, 3] of counts / horizon, values
    [N, 1], position_ids [N], -1 for an empty row). Age is the running id of the rows."""
    filled = position_ids >= 0
    counts = np.rint(observations[filled] * horizon).astype(np.int64)
    targets = values[filled, 0].astype(np.float64)
    ids = position_ids[filled]
    newer = (ids >= np.median(ids)) if len(ids) else np.zeros(0, bool)
    found, which = np.unique(counts, axis=0, return_inverse=True)
    which = which.ravel()
    rows = np.bincount(which, minlength=len(found))
    newer_rows = np.bincount(which, weights=newer, minlength=len(found)).astype(np.int64)
    totals = np.bincount(which, weights=targets, minlength=len(found))
    newer_totals = np.bincount(which, weights=targets * newer, minlength=len(found))
    with np.errstate(invalid="ignore", divide="ignore"):
        newer_means = newer_totals / newer_rows
    return {tuple(position): (total / count, int(count), float(newer_mean), int(newer_count))
            for position, total, count, newer_mean, newer_count
            in zip(found.tolist(), totals, rows, newer_means, newer_rows)}


def print_values(checkpoint: str, replay: dict[str, np.ndarray], agent: Agent,
                 decisions: list[Counts], options: dict) -> None:
    """The network's value (`agent`, the run's), the mean targets of the `replay` arrays of its
    `checkpoint` (named) and the Bayes value at each decision and the positions its arms lead
    to."""
    horizon = options["horizon"]
    means = stored_target_means(replay["observations"], replay["values"],
                                replay["position_id"], horizon)
    table = _bayes_table(horizon, float(options["safe_reward"]))
    print(f"  values ({checkpoint}): network / replay's mean target, whole window (rows)"
          f" / newer half (rows) / Bayes")
    for successes, failures, safe_pulls in decisions:
        print(f"  at {successes} successes {failures} failures {safe_pulls} safe pulls and after:")
        for label, position in (("here", (successes, failures, safe_pulls)),
                                ("safe pull", (successes, failures, safe_pulls + 1)),
                                ("risky pays", (successes + 1, failures, safe_pulls)),
                                ("risky fails", (successes, failures + 1, safe_pulls))):
            if sum(position) >= horizon:
                continue
            value = float(agent.model.initial_inference(encodings([position], options))
                          .value[0, 0])
            mean, rows, newer, newer_rows = means.get(position, (float("nan"), 0,
                                                                 float("nan"), 0))
            bayes = table[sum(position), position[0], position[1]].max()
            print(f"    {label:11s} {position}: {value:6.2f} / {mean:6.2f} ({rows}) / "
                  f"{newer:6.2f} ({newer_rows}) / {bayes:6.2f}")


ArmRewards = dict[Counts, tuple[float, float]]  # expected reward of (safe, risky) at a position


def planned_policy(rewards: ArmRewards, options: dict) -> dict[Counts, int]:
    """The arm of highest value in every position by backward induction, each arm's expected
    reward taken from `rewards` and the risky arm, which pays 1 or 0, paying with its expected
    reward as chance (clipped to [0, 1]); safe on ties, as the Bayes player."""
    value: dict[Counts, float] = {}
    policy = {}
    for position in reversed(positions(options["horizon"])):
        successes, failures, safe_pulls = position
        safe_reward, risky_reward = rewards[position]
        pays = min(max(risky_reward, 0.0), 1.0)
        safe = safe_reward + value.get((successes, failures, safe_pulls + 1), 0.0)
        risky = (pays * (1.0 + value.get((successes + 1, failures, safe_pulls), 0.0))
                 + (1.0 - pays) * value.get((successes, failures + 1, safe_pulls), 0.0))
        value[position] = max(safe, risky)
        policy[position] = RISKY if risky > safe else SAFE
    return policy


def observed_rewards(observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                     position_ids: np.ndarray, options: dict,
                     pool_safe_pulls: bool = True) -> ArmRewards:
    """Per position, from a replay buffer's arrays: the safe reward, and the risky arm's rate of
    paying over every risky pull stored at the same (successes, failures), whatever the safe
    pulls (`pool_safe_pulls`; else at the same position only), with the uniform prior's one
    success and one failure added ((paid + 1) / (pulls + 2): 0.5 where no pull was stored)."""
    horizon = options["horizon"]
    filled = position_ids >= 0
    counts = np.rint(observations[filled] * horizon).astype(np.int64)
    if pool_safe_pulls:
        counts[:, 2] = 0
    risky = actions[filled] == RISKY
    paid = rewards[filled, 0] > 0.5
    cells = np.ravel_multi_index(counts[risky].T, (horizon + 1,) * 3)
    pulls = np.bincount(cells, minlength=(horizon + 1) ** 3)
    pays = np.bincount(cells, weights=paid[risky], minlength=(horizon + 1) ** 3)
    rate = (pays + 1.0) / (pulls + 2.0)
    return {(successes, failures, safe_pulls):
            (float(options["safe_reward"]),
             float(rate[np.ravel_multi_index(
                 (successes, failures, 0 if pool_safe_pulls else safe_pulls),
                 (horizon + 1,) * 3)]))
            for successes, failures, safe_pulls in positions(horizon)}


def fitted_chances(observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                   position_ids: np.ndarray, options: dict, seed: int = 0) -> ArmRewards:
    """Per position, the safe reward and the risky arm's chance to pay as a network of the
    bandit's size (two hidden layers of 64), fitted by cross-entropy to the stored risky pulls'
    outcomes from their real encodings, predicts it: what a chance head of its own, apart from
    the reward head and the unrolls, learns from the same data without being told what the
    chance depends on."""
    import keras

    filled = (position_ids >= 0) & (actions == RISKY)
    keras.utils.set_random_seed(seed)
    head = keras.Sequential([keras.Input(observations.shape[1:]),
                             keras.layers.Dense(64, activation="relu"),
                             keras.layers.Dense(64, activation="relu"),
                             keras.layers.Dense(1, activation="sigmoid")])
    head.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    head.fit(observations[filled], (rewards[filled, 0] > 0.5).astype(np.float32),
             batch_size=256, epochs=30, verbose=0)
    reachable = positions(options["horizon"])
    chances = head.predict(encodings(reachable, options), batch_size=len(reachable),
                           verbose=0)[:, 0]
    return {position: (float(options["safe_reward"]), float(chance))
            for position, chance in zip(reachable, chances)}


def predicted_rewards(agent: Agent, options: dict) -> ArmRewards:
    """Per position, the reward the agent's network predicts for each arm from the position's
    real encoding (one dynamics step)."""
    reachable = positions(options["horizon"])
    hidden = agent.model.initial_inference(encodings(reachable, options)).hidden
    safe, risky = (agent.model.recurrent_inference(hidden, np.full(len(reachable), arm,
                                                                  np.int32)).reward[:, 0]
                   for arm in (SAFE, RISKY))
    return {position: (float(s), float(r)) for position, s, r in zip(reachable, safe, risky)}


def print_plans(replay: dict[str, np.ndarray], agent: Agent, options: dict) -> None:
    """The exact return of planning on the run's data (its checkpoint's `replay` arrays) and on
    its network's reward head."""
    arrays = (replay["observations"], replay["actions"], replay["rewards"], replay["position_id"])
    for label, rewards in (
            ("the replay's observed rates", observed_rewards(*arrays, options)),
            ("the same rates, each position apart",
             observed_rewards(*arrays, options, pool_safe_pulls=False)),
            ("a chance head fitted to the replay's pulls", fitted_chances(*arrays, options)),
            ("the network's reward head", predicted_rewards(agent, options))):
        print(f"  planned on {label}: exact expected return "
              f"{expected_return(planned_policy(rewards, options), options):.4f}")


Cost = tuple[float, float, Counts]  # reach x Bayes value given up, reach, position


def costliest_decisions(policy: dict[Counts, int], options: dict) -> list[Cost]:
    """Every decision the agent reaches under the prior, costliest first."""
    table = _bayes_table(options["horizon"], float(options["safe_reward"]))
    reach = {(0, 0, 0): 1.0}
    costs = []
    for pulls in range(options["horizon"]):
        for position, chance in sorted(reach.items()):
            successes, failures, safe_pulls = position
            if successes + failures + safe_pulls != pulls:
                continue
            arm = policy[position]
            q = table[pulls, successes, failures]
            costs.append((chance * (q.max() - q[arm]), chance, position))
            if arm == RISKY:
                pays = (successes + 1) / (successes + failures + 2)
                for child, share in (((successes + 1, failures, safe_pulls), pays),
                                     ((successes, failures + 1, safe_pulls), 1.0 - pays)):
                    reach[child] = reach.get(child, 0.0) + chance * share
            else:
                child = (successes, failures, safe_pulls + 1)
                reach[child] = reach.get(child, 0.0) + chance
    return sorted(costs, reverse=True)


def cost_by_direction(policy: dict[Counts, int], costs: list[Cost]) -> tuple[float, float]:
    """The gap to the Bayes-optimal return, `costs` being `costliest_decisions(policy, ...)`,
    split into (too cautious, too bold): the costs of playing safe where risky is worth more,
    and of playing risky where safe is.

    Which way an agent errs moved with self-play's temperature (docs/experiments.md, twelfth
    session), so the split is printed beside every exact return."""
    cautious = bold = 0.0
    for cost, _, position in costs:
        if policy[position] == RISKY:
            bold += cost
        else:
            cautious += cost
    return cautious, bold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="checkpoint or run folders of onearmbandit")
    parser.add_argument("--show", type=int, default=5, help="costliest decisions to list")
    parser.add_argument("--values", type=int, default=0, metavar="N",
                        help="for the N costliest decisions, the values behind them (see above)")
    parser.add_argument("--plans", action="store_true",
                        help="the exact return of planning on the run's data and on its reward "
                             "head (see above)")
    arguments = parser.parse_args()
    for run in arguments.runs:
        agent = load_agent(run)
        policy, options = policy_of(agent)
        exact = expected_return(policy, options)
        if options["success_probability"] is not None:
            print(f"{run}: exact expected return {exact:.4f} at success probability "
                  f"{options['success_probability']}")
            continue
        table = _bayes_table(options["horizon"], float(options["safe_reward"]))
        costs = costliest_decisions(policy, options)
        cautious, bold = cost_by_direction(policy, costs)
        print(f"{run}: exact expected return {exact:.4f} "
              f"(Bayes-optimal {table[0, 0, 0].max():.4f}; of the gap, too cautious "
              f"{cautious:.4f}, too bold {bold:.4f})")
        for cost, chance, (successes, failures, safe_pulls) in costs[:arguments.show]:
            if cost <= 0.0:
                break
            arm = "risky" if policy[(successes, failures, safe_pulls)] == RISKY else "safe"
            print(f"  costs {cost:.4f}: reached with chance {chance:.3f}, {successes} successes "
                  f"{failures} failures {safe_pulls} safe pulls, plays {arm}")
        if arguments.values or arguments.plans:
            checkpoint = load_checkpoint(run, AGENT)  # the agent's: its replay, read once
            replay = checkpoint.replay_arrays()
        if arguments.values:
            costly = [position for cost, _, position in costs[:arguments.values] if cost > 0.0]
            print_values(checkpoint.path.name, replay, agent, costly, options)
        if arguments.plans:
            print_plans(replay, agent, options)


if __name__ == "__main__":
    main()
