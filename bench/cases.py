"""Benchmark plans: presets from a TOML file, checked key by key.

    plan = load_preset("default")                       # bench/presets.toml
    plan = load_preset("mine", Path("my-cases.toml"))   # a user's own file
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from impls import DTYPES, REGISTRY, TIMED, Problem, make_inputs

PRESETS = Path(__file__).with_name("presets.toml")
DEVICE_CHOICES = ("cpu", "gpu", "auto")
MATMUL_PRECISIONS = ("highest", "tensorfloat32")


class ConfigError(ValueError):
    """A preset or config file that cannot be used: the message names the file and the key."""


@dataclass(frozen=True)
class Plan:
    """What one benchmark run measures, and the settings that make its figures comparable."""

    cases: tuple[Problem, ...]
    impls: tuple[str, ...] = TIMED
    dtypes: tuple[str, ...] = ("float32",)
    devices: tuple[str, ...] = ("auto",)  # "auto": the CPU, and the GPU where one is present
    max_time: float = 1.0  # seconds of timing per benchmark, after calibration and warm-up
    threads: tuple[int, ...] = ()  # CPU threads per framework process, one run each; (): every core
    steps: int = 1  # gradient evaluations per call (lax.scan in JAX, a loop in torch)
    case_timeout: float = 600.0  # seconds one benchmark may run before it is stopped and failed
    plugins: tuple[str, ...] = ()  # modules whose IMPLEMENTATIONS join the registry
    matmul_precision: str = "highest"  # full float32 on GPUs; "tensorfloat32" allows TF32
    preset: str = "custom"

    def with_overrides(self, **changes) -> Plan:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_PLAN_KEYS = {f.name for f in fields(Plan)} - {"threads", "steps", "matmul_precision", "preset",
                                               "case_timeout", "plugins"}
_CASE_KEYS = {f.name for f in fields(Problem)}


def _list_of(value, allowed, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where} must be a non-empty list, got {value!r}")
    for item in value:
        if item not in allowed:
            raise ConfigError(f"{where}: {item!r} is not one of {', '.join(allowed)}")
    return tuple(value)


def _reject_unknown_keys(table: dict, allowed: set, where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: "
                          f"{', '.join(sorted(allowed))}")


def _case(entry, where: str) -> Problem:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table like {{ sizes = [16, 1], batch = 8 }}, got {entry!r}")
    _reject_unknown_keys(entry, _CASE_KEYS, where)
    if "sizes" not in entry:
        raise ConfigError(f"{where}: missing key 'sizes'")
    if not isinstance(entry["sizes"], list):
        raise ConfigError(f"{where}.sizes must be a list of positive integers, got {entry['sizes']!r}")
    try:
        return Problem(**entry)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


def parse_plan(table, where: str, preset: str) -> Plan:
    """A :class:`Plan` from one preset's TOML table; ``where`` names it in error messages."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    _reject_unknown_keys(table, _PLAN_KEYS, where)
    cases = table.get("cases")
    if not isinstance(cases, list) or not cases:
        raise ConfigError(f"{where}.cases must be a non-empty list of cases")
    settings = {}
    if "impls" in table:
        settings["impls"] = _list_of(table["impls"], list(REGISTRY), f"{where}.impls")
    if "dtypes" in table:
        settings["dtypes"] = _list_of(table["dtypes"], DTYPES, f"{where}.dtypes")
    if "devices" in table:
        settings["devices"] = _list_of(table["devices"], DEVICE_CHOICES, f"{where}.devices")
    if "max_time" in table:
        value = table["max_time"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 60:
            raise ConfigError(f"{where}.max_time {value!r} must be a number of seconds in (0, 60]")
        settings["max_time"] = float(value)
    return Plan(cases=tuple(_case(entry, f"{where}.cases[{index}]")
                            for index, entry in enumerate(cases)), preset=preset, **settings)


def load_preset(name: str, path: Path = PRESETS) -> Plan:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read config {str(path)!r}: {error.strerror}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: malformed TOML: {error}") from None
    if not document:
        raise ConfigError(f"{path}: no presets in the file (it is empty)")
    if name not in document:
        raise ConfigError(f"unknown preset {name!r} in {path}; choose from {', '.join(document)}")
    return parse_plan(document[name], f"{path}: [{name}]", preset=name)


def stepped_inputs(problem: Problem, steps: int):
    """``(params, xs, ys)`` for ``steps`` batches: the problem's params, ``steps`` x its batch of
    data, split into batches of (steps, B, d)."""
    params, x, y = make_inputs(replace(problem, batch=problem.batch * steps))
    return params, x.reshape(steps, problem.batch, -1), y.reshape(steps, problem.batch, -1)


def benchmark_name(impl: str, problem: Problem, dtype: str, device: str, threads: int) -> str:
    """The name of one timed benchmark: its pytest id and its record's key."""
    return f"{impl}-{case_id(problem)}-{dtype}-{device}-t{threads}"


def case_id(problem: Problem) -> str:
    """A readable, unique name for a case: ``16-32-32-1_b32`` (plus init and scale if not default)."""
    name = "-".join(map(str, problem.sizes)) + f"_b{problem.batch}"
    default = Problem()
    for key in ("init", "std", "scale", "seed"):
        if getattr(problem, key) != getattr(default, key):
            name += f"_{key}{getattr(problem, key)}"
    return name


def matmul_flops(problem: Problem) -> int:
    """The flop model: the matrix products of one forward and backward pass.

    Each layer costs 2 * B * d_in * d_out flops forward (``h @ W``), and twice that backward
    (``t.T @ d_z`` for dW and ``d_z @ W.T`` for the message): 6 * B * sum(d_in * d_out). The
    first layer's message is not needed, and a hand-written backward can skip it; the model
    counts it anyway, so that every implementation is credited the same work. Elementwise work
    (tanh, its local gradient, biases, the loss: about 10 * B * sum(d_out) flops) is left out.
    """
    return 6 * problem.batch * sum(d_in * d_out for d_in, d_out in
                                   zip(problem.sizes[:-1], problem.sizes[1:]))
