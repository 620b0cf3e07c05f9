"""A study's factors as Optuna distributions: what a search draws from, and how a planned run's
settings show as a trial's params (numbers as numbers, so the dashboard can plot them; anything
else by its label)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from digitlab.errors import ConfigError
from digitlab.studies.spec import Factor, PlannedRun, StudySpec, run_config
from digitlab.training.config import TrainConfig

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import Trial

Params = tuple[dict[str, Any], dict[str, "BaseDistribution"]]
_FIELDS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _is_float_setting(name: str) -> bool:
    return type(_FIELDS.get(name)) is float


def search_space(spec: StudySpec) -> dict[str, BaseDistribution]:
    """Each factor's distribution: a range as an int or float interval, values as choices among
    their labels."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space: dict[str, BaseDistribution] = {}
    for factor in spec.factors:
        r = factor.range
        if r is None:
            space[factor.name] = CategoricalDistribution([label for label, _ in factor.values])
        elif r.integer and not _is_float_setting(factor.name):
            space[factor.name] = IntDistribution(int(r.low), int(r.high), log=r.log,
                                                 step=int(r.step or 1))
        else:
            space[factor.name] = FloatDistribution(r.low, r.high, log=r.log, step=r.step)
    return space


def draw(trial: Trial, spec: StudySpec, epochs: int | None, seed: int,
         device: str) -> tuple[list[tuple[str, str]], TrainConfig]:
    """Let `trial` (its sampler) choose every factor: the (factor, label) settings and the run's
    TrainConfig."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    combo, space = [], search_space(spec)
    for factor in spec.factors:
        dist = space[factor.name]
        if isinstance(dist, CategoricalDistribution):
            label = str(trial.suggest_categorical(factor.name, [str(c) for c in dist.choices]))
            combo.append((factor.name, (label, dict(factor.values)[label])))
            continue
        if isinstance(dist, IntDistribution):
            value: Any = trial.suggest_int(factor.name, dist.low, dist.high, step=dist.step,
                                           log=dist.log)
        else:
            assert isinstance(dist, FloatDistribution)
            value = trial.suggest_float(factor.name, dist.low, dist.high, step=dist.step, log=dist.log)
        combo.append((factor.name, (f"{value:.4g}", value)))
    config = dataclasses.replace(run_config(spec, tuple(combo), epochs, device), seed=seed)
    return [(name, label) for name, (label, _) in combo], config


def base_params(spec: StudySpec, base: TrainConfig) -> dict[str, Any] | None:
    """The base's own values in the search space's terms, so a search starts from the reference;
    None where the base lies outside it."""
    params: dict[str, Any] = {}
    for factor in spec.factors:
        value = getattr(base, factor.name) if factor.name in _FIELDS else base.model_args.get(factor.name)
        found = _base_choice(factor, value)
        if found is None:
            return None
        params[factor.name] = found
    return params


def _base_choice(factor: Factor, value: Any) -> Any:
    r = factor.range
    if r is None:
        return next((label for label, v in factor.values if v == value), None)
    if type(value) not in (int, float) or not r.low <= value <= r.high:
        return None
    if r.step is not None and not math.isclose((value - r.low) / r.step, round((value - r.low) / r.step)):
        return None
    return int(value) if r.integer and not _is_float_setting(factor.name) else float(value)


def plan_params(plan: Sequence[PlannedRun]) -> list[Params]:
    """Each planned run's settings as params with distributions: a numeric factor as the
    interval of its values in the plan (the run's own value, after --epochs scaling), a boolean
    as [False, True], anything else as a choice among its labels; the seed where there are
    several."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    seen: dict[str, list[tuple[str, Any]]] = {}
    for run in plan:
        for name, label in run.settings:
            seen.setdefault(name, []).append((label, _actual(run.config, name)))
    space: dict[str, BaseDistribution] = {}
    for name, pairs in seen.items():
        values = [v for _, v in pairs]
        if all(isinstance(v, bool) for v in values):
            space[name] = CategoricalDistribution([False, True])
        elif all(type(v) in (int, float) for v in values):
            whole = all(type(v) is int for v in values) and not _is_float_setting(name)
            kind = IntDistribution if whole else FloatDistribution
            space[name] = kind(min(values), max(values))
        else:
            space[name] = CategoricalDistribution(list(dict.fromkeys(label for label, _ in pairs)))
    seeds = sorted({run.seed for run in plan})
    out = []
    for run in plan:
        params, dists = {}, {}
        for name, label in run.settings:
            value, dists[name] = _actual(run.config, name), space[name]
            labelled = isinstance(space[name], CategoricalDistribution) and not isinstance(value, bool)
            params[name] = label if labelled else value
        if len(seeds) > 1:
            params["seed"], dists["seed"] = run.seed, IntDistribution(seeds[0], seeds[-1])
        out.append((params, dists))
    return out


def _actual(config: TrainConfig, name: str) -> Any:
    return getattr(config, name) if name in _FIELDS else config.model_args[name]


def compatible(old: BaseDistribution, new: BaseDistribution) -> bool:
    """Whether Optuna lets one study hold both (it refuses a categorical's choices changing)."""
    if type(old) is not type(new):
        return False
    return old == new if hasattr(old, "choices") else getattr(old, "log", False) == getattr(new, "log", False)


def check_search(spec: StudySpec) -> None:
    """A search needs something to draw and one seed per trial."""
    if not spec.factors:
        raise ConfigError("a search needs factors to draw from: [vary] ranges or lists, or --vary")
    if len(spec.seeds) > 1:
        raise ConfigError("a search trains each trial once, with one seed: give at most one")
    if spec.mode == "grid":
        raise ConfigError("--grid plans every combination; a search draws them: choose one")
