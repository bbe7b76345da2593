"""`evolution`: search over the trained supernet with Optuna's samplers (SPOS-style).

The supernet trains on uniformly sampled architectures (as in SPOS, Guo et al. 2020); each
controller step asks an Optuna sampler for candidates over the decision points (categorical
parameters) and tells it their scores:

- `nsga2`: NSGA-II, two objectives (accuracy up, cost down): the population moves along the
  accuracy / cost Pareto front;
- `tpe`: TPE on the reward (accuracy with its cost term).

Optuna's samplers do the evolution; this module only maps architectures to trials and keeps the
study in the checkpoint (plain data: params, values and the sampler's attributes), re-seeding
the sampler from (seed, number of trials) at every ask so that a resumed search asks exactly
what the uninterrupted one would have.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import optuna
import torch
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from lightnas.errors import ConfigError
from lightnas.search.space import Architecture, SearchSpace
from lightnas.search.strategies.base import STRATEGIES, Score, Strategy

SAMPLERS = ("nsga2", "tpe")


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """No log line per study and trial: the search prints its own progress."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


@dataclass
class EvolutionOptions:
    """The `evolution` strategy (Optuna samplers over the trained supernet)."""

    sampler: str = "nsga2"
    """nsga2 (accuracy up, cost down: a Pareto front) or tpe (the reward)."""
    population: int = 16
    """NSGA-II's population size; TPE's random start-up trials."""


@dataclass(frozen=True)
class EvolutionSearchOptions:
    """What the evolution strategy is built from: `search.warmup_epochs` and its section."""

    warmup_epochs: int = 0
    evolution: EvolutionOptions = field(default_factory=EvolutionOptions)


@STRATEGIES.register("evolution")
class EvolutionStrategy(Strategy):
    """Uniform training samples; candidates from an Optuna sampler; the favourite is the
    highest reward among the latest population."""

    favourite_label = "evolved"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        warmup_epochs: int = 0,
        sampler: str = "nsga2",
        population: int = 16,
    ) -> None:
        super().__init__(space, seed)
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
        self.warmup_epochs = warmup_epochs
        self.sampler_name = sampler
        self.population = population
        self.distributions = {p.name: CategoricalDistribution(p.choices) for p in space}
        self.study = self._new_study()
        self._pending: list[optuna.trial.Trial] = []

    @classmethod
    def check_options(cls, options: EvolutionSearchOptions) -> None:
        e = options.evolution
        if e.sampler not in SAMPLERS:
            raise ConfigError(
                f"evolution.sampler={e.sampler!r} is not valid; valid: {', '.join(SAMPLERS)}"
            )
        if e.population < 2:
            raise ConfigError(f"evolution.population={e.population} must be >= 2")

    @classmethod
    def from_options(
        cls, space: SearchSpace, options: EvolutionSearchOptions, seed: int = 0
    ) -> EvolutionStrategy:
        e = options.evolution
        return cls(space, seed, options.warmup_epochs, e.sampler, e.population)

    def _new_study(self) -> optuna.Study:
        directions = ["maximize", "minimize"] if self.sampler_name == "nsga2" else ["maximize"]
        with quiet_optuna():
            return optuna.create_study(directions=directions)

    def _sampler(self) -> optuna.samplers.BaseSampler:
        """A sampler seeded from the strategy's generator (whose state the checkpoint keeps):
        a resumed study asks what the uninterrupted one would."""
        seed = int(torch.randint(2**31 - 1, (1,), generator=self.generator))
        if self.sampler_name == "nsga2":
            return optuna.samplers.NSGAIISampler(population_size=self.population, seed=seed)
        return optuna.samplers.TPESampler(n_startup_trials=self.population, seed=seed)

    def _trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    # -- the contract --
    def sample(self, epoch: int) -> Architecture:
        return self.space.sample(self.generator)

    def wants_rewards(self, epoch: int) -> bool:
        return epoch >= self.warmup_epochs

    def ask(self, n: int) -> list[Architecture]:
        self.study.sampler = self._sampler()
        self._pending = [self.study.ask(self.distributions) for _ in range(n)]
        return [Architecture(self.space, t.params) for t in self._pending]

    def tell(self, candidates: Sequence[Architecture], scores: Sequence[Score]) -> dict:
        trials, self._pending = self._pending, []
        if [dict(Architecture(self.space, t.params)) for t in trials] != [
            dict(c) for c in candidates
        ]:
            raise ValueError("tell() must receive the candidates of the last ask(), in order")
        with quiet_optuna():
            for trial, score in zip(trials, scores, strict=True):
                trial.set_user_attr("reward", score.reward)
                values = [score.accuracy, score.cost] if self.sampler_name == "nsga2" else None
                self.study.tell(trial, values or score.reward)
        return {"reward": sum(s.reward for s in scores) / len(scores)}

    def _recent(self) -> list[optuna.trial.FrozenTrial]:
        done = [t for t in self._trials() if t.state == TrialState.COMPLETE]
        return done[-self.population :]

    def _ranked(self) -> list[Architecture]:
        """Distinct architectures of the latest population, best reward first."""
        ranked, seen = [], set()
        for t in sorted(self._recent(), key=lambda t: -t.user_attrs["reward"]):
            arch = Architecture(self.space, t.params)
            if arch not in seen:
                seen.add(arch)
                ranked.append(arch)
        return ranked

    def favourite(self) -> Architecture:
        ranked = self._ranked()
        return ranked[0] if ranked else self.space.default()

    def candidates(self, epoch: int, n: int) -> list[Architecture]:
        ranked = self._ranked()[:n]
        return ranked + [self.sample(epoch) for _ in range(n - len(ranked))]

    # -- state: the study as plain data --
    def state_dict(self) -> dict:
        trials = [
            {
                "params": [self.space[k].choices.index(v) for k, v in t.params.items()],
                "names": list(t.params),
                "values": list(t.values) if t.values is not None else None,
                "state": t.state.name,
                "user_attrs": dict(t.user_attrs),
                "system_attrs": dict(t.system_attrs),
            }
            for t in self._trials()
            if t.state == TrialState.COMPLETE
        ]
        storage = self.study._storage
        study_attrs = dict(storage.get_study_system_attrs(self.study._study_id))
        return {**super().state_dict(), "trials": trials, "study_attrs": study_attrs}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.study = self._new_study()
        for t in state["trials"]:
            pairs = zip(t["names"], t["params"], strict=True)
            params = {n: self.space[n].choices[i] for n, i in pairs}
            trial = optuna.trial.create_trial(
                params=params,
                distributions={n: self.distributions[n] for n in params},
                values=t["values"],
                user_attrs=t["user_attrs"],
                system_attrs=t["system_attrs"],
            )
            self.study.add_trial(trial)
        for key, value in state["study_attrs"].items():
            self.study._storage.set_study_system_attr(self.study._study_id, key, value)
        self._pending = []
