"""Parameter studies: a base configuration, the values to vary, and the runs that follow.

A spec (TOML, or YAML when PyYAML is installed) names a recipe plus overrides as the base and,
under `vary`, each factor's values: a list, or a table of labelled values ("3 layers" =
[128, 128, 128]). A factor is a TrainConfig field (lr, batch_size, epochs, weight_decay, loss, ...)
or an argument of the base model (mlp: hidden, activation). One-at-a-time (the default) runs the
base as the reference and changes one factor per variant; `grid` runs every combination.
A factor may instead be a range, `lr = {low = 0.01, high = 3, log = true}` (`step` too), which
only a search (`--search tpe`, digitlab.studies.search) draws from.
Running the plan is digitlab.studies.runner's job; its figures and tables, digitlab.studies.summary's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import sys
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from digitlab.errors import ConfigError, DigitlabError
from digitlab.models import create_model, model_arguments
from digitlab.studies.checks import base_problems, check_factor_type
from digitlab.studies.folders import check_name
from digitlab.training.config import TrainConfig
from digitlab.training.recipes import build_config, get_recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (a dependency there)
    import tomli as tomllib

MODES = ("one-at-a-time", "grid")
DEFAULT_RECIPE = "tutorial-mlp"
# Settings that say where or how a run executes, not what it learns: never factors.
NOT_FACTORS = {"recipe", "model", "model_args", "device", "progress", "dry_run", "save_model"}
SPEC_KEYS = {"name", "description", "mode", "seeds", "base", "vary"}


RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class Range:
    """An interval a search draws a factor's value from: ints when both ends are ints."""

    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = None

    @property
    def integer(self) -> bool:
        return type(self.low) is int and type(self.high) is int and type(self.step) in (int, type(None))


@dataclass(frozen=True)
class Factor:
    """One thing to vary: its (label, value) pairs, or the range a search draws it from."""

    name: str
    values: tuple[tuple[str, Any], ...]
    range: Range | None = None


@dataclass(frozen=True)
class StudySpec:
    """A parameter study: the base (recipe + overrides) and the factors to vary."""

    name: str
    recipe: str = DEFAULT_RECIPE
    base: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides, model_args too
    factors: tuple[Factor, ...] = ()
    mode: str = "one-at-a-time"
    seeds: tuple[int, ...] = ()  # empty: the base's seed
    description: str = ""


@dataclass(frozen=True)
class PlannedRun:
    """One run of a study: its folder name, what it changes from the base, its settings."""

    name: str
    settings: tuple[tuple[str, str], ...]  # (factor, label) pairs; () for the reference run
    seed: int
    config: TrainConfig

    @property
    def is_reference(self) -> bool:
        return not self.settings


# ---------------------------------------------------------------- reading a spec


def shipped_studies() -> list[str]:
    folder = resources.files("digitlab") / "studies"
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_spec(source: str | Path) -> StudySpec:
    """Read a spec file, or the study shipped with digitlab under that name (`part2`)."""
    path = Path(source)
    if path.is_file():
        text, label = _read(path), str(path)
    elif str(source) in shipped_studies():
        resource = resources.files("digitlab") / "studies" / f"{source}.toml"
        text, label, path = resource.read_text(), str(source), Path(f"{source}.toml")
    else:
        raise ConfigError(f"no study file {source} (shipped studies: {', '.join(shipped_studies())})")
    return parse_spec(_parse_text(text, path.suffix, label), default_name=path.stem)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read study file {path}: {e}") from None


def _parse_text(text: str, suffix: str, label: str) -> dict[str, Any]:
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{label}: YAML needs PyYAML (pip install pyyaml); or use TOML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{label}: not valid YAML ({' '.join(str(e).split())})") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{label}: not valid TOML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: a study spec is a table of name, base, vary, mode, seeds")
    return data


def parse_spec(data: dict[str, Any], default_name: str = "study") -> StudySpec:
    """A StudySpec from a parsed TOML/YAML table; every mistake is a one-line ConfigError."""
    unknown = set(data) - SPEC_KEYS
    if unknown:
        raise ConfigError(f"unknown study key(s) {sorted(unknown)}; use {sorted(SPEC_KEYS)}")
    base = dict(data.get("base") or {})
    if not isinstance(data.get("vary") or {}, dict):
        raise ConfigError("study 'vary' must be a table of factor = [values]")
    seeds = data.get("seeds") or []
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"study 'seeds' must be a list of integers (got {seeds!r})")
    spec = StudySpec(
        name=check_name(str(data.get("name") or default_name), "study name"),
        recipe=str(base.pop("recipe", DEFAULT_RECIPE)),
        base=base, factors=tuple(_factor(k, v) for k, v in (data.get("vary") or {}).items()),
        mode=str(data.get("mode", "one-at-a-time")), seeds=tuple(seeds),
        description=str(data.get("description", "")),
    )
    return check_spec(spec)


def _factor(name: str, values: Any) -> Factor:
    if isinstance(values, dict) and {"low", "high"} <= set(values) <= RANGE_KEYS:
        return Factor(name, (), _range(name, values))
    if isinstance(values, dict):
        pairs = [(str(label), value) for label, value in values.items()]
    elif isinstance(values, list):
        pairs = [(value_label(value), value) for value in values]
    else:
        pairs = [(value_label(values), values)]
    if not pairs:
        raise ConfigError(f"factor {name!r} has no values")
    return Factor(name, tuple(pairs))


def _range(name: str, table: dict[str, Any]) -> Range:
    low, high, log, step = (table.get(k) for k in ("low", "high", "log", "step"))
    numbers = all(type(v) in (int, float) for v in (low, high)) and type(step) in (int, float, type(None))
    if not numbers or not isinstance(log or False, bool) or low is None or high is None:
        raise ConfigError(f"factor {name}: a range is {{low = N, high = N}}, with log = true or "
                          f"step = N if wanted (got {table})")
    if not low < high:
        raise ConfigError(f"factor {name}: the range's low ({low}) must be below its high ({high})")
    if log and (low <= 0 or step is not None):
        raise ConfigError(f"factor {name}: a log range needs low > 0 and no step")
    if step is not None and step <= 0:
        raise ConfigError(f"factor {name}: the range's step must be positive (got {step})")
    return Range(low, high, bool(log), step)


def value_label(value: Any) -> str:
    """How a value reads in run names and legends: [128, 128] -> 128-128."""
    if isinstance(value, list | tuple):
        return "-".join(map(str, value)) if value else "none"
    return str(value)


def check_spec(spec: StudySpec) -> StudySpec:
    """Check mode, recipe and factor names; return `spec`."""
    if spec.mode not in MODES:
        raise ConfigError(f"study mode must be one of {', '.join(MODES)} (got {spec.mode!r})")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if set(spec.base) - fields:
        raise ConfigError(f"unknown base setting(s) {sorted(set(spec.base) - fields)}")
    check_name(spec.name, "study name")
    problems = base_problems(spec.base)
    if problems:
        raise ConfigError(f"study {spec.name}: " + f"\nstudy {spec.name}: ".join(problems))
    if spec.seeds and any(f.name == "seed" for f in spec.factors):
        raise ConfigError("seed is a factor here: give its values there (--vary seed=1,2,3) or "
                          "--seeds, not both")
    train_fields = fields - NOT_FACTORS
    model = str(spec.base.get("model") or get_recipe(spec.recipe).model)
    model_args = model_arguments(model)
    for factor in spec.factors:
        if factor.name not in train_fields and factor.name not in model_args:
            raise ConfigError(
                f"unknown factor {factor.name!r}: vary a training setting ({', '.join(sorted(train_fields))})"
                f" or an argument of model {model} ({', '.join(model_args) or 'none'})"
            )
    if len({f.name for f in spec.factors}) != len(spec.factors):
        raise ConfigError("each factor may appear only once")
    return spec


def parse_vary(items: list[str]) -> tuple[Factor, ...]:
    """`--vary lr=0.1,1,10 --vary hidden=[128,128],[256]`: values parse as JSON, else text;
    `--vary lr=0.01..3:log` is a range (for --search)."""
    factors = []
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--vary wants NAME=V1,V2,... or NAME=LOW..HIGH (got {item!r})")
        ends = re.fullmatch(r"\s*(\S+?)\.\.(\S+?)(:log)?\s*", text)
        if ends and all(isinstance(_value(e), int | float) for e in ends.group(1, 2)):
            table = {"low": _value(ends[1]), "high": _value(ends[2]), "log": bool(ends[3])}
            factors.append(_factor(name.strip().replace("-", "_"), table))
            continue
        parts = [p.strip() for p in re.split(r",(?![^\[]*\])", text) if p.strip()]
        factors.append(_factor(name.strip().replace("-", "_"), [_value(p) for p in parts]))
    return tuple(factors)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_spec(source: str | None, vary: list[str] | None = None, grid: bool = False,
               seeds: list[int] | None = None, recipe: str | None = None) -> StudySpec:
    """The spec from `source` (file or shipped name; None: `recipe` as the base, default
    tutorial-mlp) with command-line `vary` factors added or replacing those of the same name."""
    if source is None and not vary:
        raise ConfigError("give a study spec (file or name, e.g. part2) or --vary NAME=V1,V2")
    spec = load_spec(source) if source is not None else StudySpec(name="vary")
    extra = parse_vary(vary or [])
    names = {f.name for f in extra}
    spec = dataclasses.replace(
        spec, factors=tuple(f for f in spec.factors if f.name not in names) + extra,
        mode="grid" if grid else spec.mode, seeds=tuple(seeds) if seeds else spec.seeds,
        recipe=recipe or spec.recipe,
    )
    if source is None:  # its own folder and study for every set of factors: never runs/study-vary
        spec = dataclasses.replace(spec, name=vary_name(spec))
    return check_spec(spec)


def vary_name(spec: StudySpec) -> str:
    """A --vary study's name: its factors' names and a digest of everything it runs, e.g.
    vary-lr-3f09c2d1 (the same command gives the same name, so it resumes)."""
    text = json.dumps([spec.recipe, spec.mode, spec.seeds, [dataclasses.asdict(f) for f in spec.factors]],
                      sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    factors = "-".join(f.name for f in spec.factors)[:80]
    return f"vary-{factors}-{digest}"


# ---------------------------------------------------------------- the runs


def plan_runs(spec: StudySpec, epochs: int | None = None, device: str = "auto") -> list[PlannedRun]:
    """Every run of `spec`, reference first. `epochs` replaces the base's epochs; an `epochs`
    factor then keeps its ratio to the base (base 5, variant 25, epochs 2 -> variant 10)."""
    ranged = [f.name for f in spec.factors if f.range is not None]
    if ranged:
        raise ConfigError(f"factor(s) {', '.join(ranged)} are ranges, which a search draws from: "
                          "add --search tpe --trials N, or give them lists of values")
    natural = run_config(spec, (), None, device)
    reference = natural if epochs is None else dataclasses.replace(natural, epochs=epochs)
    if spec.mode == "grid":
        combos = [tuple(zip([f.name for f in spec.factors], pairs, strict=True))
                  for pairs in itertools.product(*(f.values for f in spec.factors))]
    else:
        combos = [((f.name, pair),) for f in spec.factors for pair in f.values]
    runs: list[PlannedRun] = []
    for seed in spec.seeds or (reference.seed,):
        ref = dataclasses.replace(reference, seed=seed)
        runs.append(PlannedRun(_name((), seed, spec), (), seed, ref))
        for combo in combos:
            if epochs is not None:
                combo = tuple((n, (lbl, _scaled(v, epochs, natural.epochs) if n == "epochs" else v))
                              for n, (lbl, v) in combo)
            config = run_config(spec, combo, epochs, device)
            if not any(n == "seed" for n, _ in combo):  # a seed factor sets the run's own seed
                config = dataclasses.replace(config, seed=seed)
            if config == ref and spec.mode != "grid":
                continue  # the base's own value: the reference run already is this variant
            settings = tuple((n, lbl) for n, (lbl, _) in combo)
            runs.append(PlannedRun(_name(settings, seed, spec), settings, seed, config))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ConfigError(f"study {spec.name}: two runs would share a folder name; give the "
                          f"values distinct labels ({', '.join(sorted(set(names)))})")
    return runs


def _scaled(value: Any, epochs: int, base_epochs: int) -> Any:
    return max(1, round(value * epochs / base_epochs)) if isinstance(value, int) else value


def run_config(spec: StudySpec, combo: tuple[tuple[str, tuple[str, Any]], ...], epochs: int | None,
               device: str) -> TrainConfig:
    """The base with each (factor, (label, value)) of `combo` applied; `epochs` replaces the
    base's. A value that does not suit its setting or model is a one-line ConfigError."""
    values = json.loads(json.dumps(spec.base))  # a deep copy in JSON's types, like config.json
    own = build_config(spec.recipe, model=values.get("model")).model_args  # the recipe's, if any
    values["model_args"] = {**own, **(values.get("model_args") or {})}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if epochs is not None:
        values["epochs"] = epochs
    for name, (label, value) in combo:
        check_factor_type(name, label, value)
        (values if name in train_fields else values["model_args"])[name] = value
    where = " ".join(f"{n}={lbl}" for n, (lbl, _) in combo) or "base"
    try:
        config = build_config(spec.recipe, **values, device=device, progress=False)
    except (TypeError, ValueError, DigitlabError) as e:
        raise ConfigError(f"study {spec.name}, {where}: {e}") from None
    try:  # a model that cannot be built is a spec mistake; say so before any run starts
        with warnings.catch_warnings():  # torch's note on a layer of no units: refused below
            warnings.simplefilter("ignore", UserWarning)
            model = create_model(config.model, **config.model_args)
    except (ValueError, RuntimeError, TypeError) as e:
        raise ConfigError(f"study {spec.name}, {where}: bad model arguments ({e})") from None
    if any(p.numel() == 0 for p in model.parameters()):  # hidden = [0]: a layer of no units
        raise ConfigError(f"study {spec.name}, {where}: bad model arguments {config.model_args}: "
                          "a layer would have no units")
    return config


def _name(settings: tuple[tuple[str, str], ...], seed: int, spec: StudySpec) -> str:
    name = "_".join(f"{n}-{lbl}" for n, lbl in settings) or "reference"
    name = re.sub(r"[^A-Za-z0-9._=-]+", "-", name).strip("-")
    return f"{name}-seed{seed}" if len(spec.seeds) > 1 else name
