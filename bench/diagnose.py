"""The courier's journey: where the message dies under each initialisation.

    python -m bench diagnose                       # make diagnose
    python -m bench diagnose --inits kaiming,oversized --sizes 32,64,64,64,1 --threshold 0.99

For one network and batch, under each init scheme, the hand-written JAX pass (its route: every
pre-activation, activation and message, from the same jitted code as the timed path) gives, per
hidden layer l:

* ``std_z``, ``std_t``       spread of the pre-activations z and activations t = tanh(z)
* ``saturated``              share of |t| > threshold (default 0.97, where 1 - t^2 < 0.06)
* ``mean_local_grad``        mean of tanh's local gradient 1 - t^2
* ``dead_units``             units saturated for every example of the batch: their weights
                             get no message at all from this batch
* ``message_norm``           ||d loss / d t_l||, the message arriving at the layer
* ``message_ratio``          message_norm / ||d loss / d out||: its size next to the message
                             that left the loss, weights included (they amplify it)
* ``through_tanh``           ||d loss / d z_l|| / ||d loss / d t_l||: the share of the message
                             that passes this layer's local gradients
* ``surviving``              the product of ``through_tanh`` from the last hidden layer down to
                             this one: the share of the message that the tanh gates let through
                             on the way here
* ``grad_to_data``           std(dW_l) / std(W_l): how large one gradient step is next to the
                             weights it changes

The two ratios tell different parts of the story. Oversized weights saturate tanh: the gates let
almost nothing through (``surviving`` near 0, dead units), yet the few live units' huge weights
amplify what does pass, so ``message_ratio`` explodes while most weights get no gradient.
Kaiming's gain offsets the squashing, and ``message_ratio`` stays near 1 through the layers.

and, per scheme, how the float32 results of the three implementations agree with the oracle
(saturation is where they drift apart).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bench.agreement import check
from impls import REGISTRY, TIMED, Problem, make_inputs

# name: (init, scale); "oversized" multiplies the normal init until |z| reaches ~20 (see README).
SCHEMES = {
    "normal": ("normal", 1.0),
    "xavier": ("xavier", 1.0),
    "kaiming": ("kaiming", 1.0),
    "oversized": ("normal", None),  # scale: DiagnoseConfig.oversize
}


@dataclass(frozen=True)
class DiagnoseConfig:
    sizes: tuple[int, ...] = (32,) + (64,) * 8 + (1,)  # eight tanh layers: deep enough to see it
    batch: int = 256
    schemes: tuple[str, ...] = tuple(SCHEMES)
    oversize: float = 20.0  # weight scale of the "oversized" scheme
    threshold: float = 0.97  # |t| above it counts as saturated
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold {self.threshold!r} must lie strictly between 0 and 1")
        for scheme in self.schemes:
            if scheme not in SCHEMES:
                raise ValueError(f"unknown init {scheme!r}; choose from {', '.join(SCHEMES)}")
        if not self.schemes:
            raise ValueError(f"no init given; choose from {', '.join(SCHEMES)}")
        if len(self.sizes) < 3:
            raise ValueError(f"sizes {','.join(map(str, self.sizes))} has no hidden layer: no tanh, "
                             "so nothing to diagnose (give at least three sizes, e.g. 16,32,1)")

    def problem(self, scheme: str) -> Problem:
        init, scale = SCHEMES[scheme]
        return Problem(sizes=self.sizes, batch=self.batch, init=init,
                       scale=self.oversize if scale is None else scale, seed=self.seed)


def layer_table(config: DiagnoseConfig, scheme: str) -> pd.DataFrame:
    """One row per hidden layer of ``scheme``'s network: the quantities of the module docstring."""
    from impls.jax_manual import compute_route

    params, x, y = make_inputs(config.problem(scheme))
    _, grads, route = compute_route(params, x, y, dtype=config.dtype)
    leaving = np.linalg.norm(route["d_out"])
    rows = []
    for index, (z, t, d_t, d_z) in enumerate(zip(route["z"], route["t"], route["d_t"], route["d_z"])):
        saturated = np.abs(t) > config.threshold
        W, dW = params[index][0], grads[index][0]
        arriving = np.linalg.norm(d_t)
        rows.append({
            "init": scheme, "layer": index + 1, "width": t.shape[1],
            "std_z": float(np.std(z)), "std_t": float(np.std(t)),
            "saturated": float(saturated.mean()),
            "mean_local_grad": float(np.mean(route["local"][index])),
            "dead_units": int(saturated.all(axis=0).sum()),
            "message_norm": float(arriving),
            "message_ratio": _ratio(arriving, leaving),
            "through_tanh": _ratio(np.linalg.norm(d_z), arriving),
            "grad_to_data": _ratio(np.std(dW), np.std(W)),
        })
    table = pd.DataFrame(rows)
    # The courier walks from the last hidden layer down: multiply the gates in that order.
    table["surviving"] = table["through_tanh"][::-1].cumprod()[::-1]
    return table


def _ratio(numerator: float, denominator: float) -> float:
    if denominator == 0:
        return 0.0 if numerator == 0 else float("inf")
    return float(numerator / denominator)


def agreement_by_init(config: DiagnoseConfig) -> pd.DataFrame:
    """Per scheme: how far each timed implementation's results are from the float64 oracle."""
    rows = []
    for scheme in config.schemes:
        params, x, y = make_inputs(config.problem(scheme))
        table = check(params, x, y, [REGISTRY[name] for name in TIMED], dtype=config.dtype).table
        for impl, group in table.groupby("impl", sort=False):
            rows.append({"init": scheme, "impl": impl,
                         "max_norm_rel_err": float(group["norm_rel_err"].max()),
                         "max_err_ratio": float(group["err_ratio"].max()),
                         "unresolved_tensors": int((~group["resolved"]).sum()),
                         "agrees": bool(group["agrees"].all())})
    return pd.DataFrame(rows)


def diagnose(config: DiagnoseConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    layers = pd.concat([layer_table(config, scheme) for scheme in config.schemes], ignore_index=True)
    return layers, agreement_by_init(config)


def _plots(config: DiagnoseConfig, layers: pd.DataFrame, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.4))
    for scheme, group in layers.groupby("init", sort=False):
        left.plot(group["layer"], group["saturated"], marker="o", label=scheme)
        middle.plot(group["layer"], group["surviving"].clip(lower=1e-30), marker="o", label=scheme)
        right.plot(group["layer"], group["message_ratio"].clip(lower=1e-30), marker="o", label=scheme)
    left.set_title(f"Saturated share (|t| > {config.threshold})")
    left.set_ylim(-0.03, 1.03)
    middle.set_title("Surviving: share let through by the tanh gates")
    right.set_title("Message size: ||d loss/d t_l|| / ||d loss/d out||")
    for ax in (middle, right):
        ax.set_yscale("log")
    for ax in (left, middle, right):
        ax.set_xlabel("hidden layer (the courier walks from right to left)")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "courier.png", dpi=110)
    plt.close(fig)

    from impls.jax_manual import compute_route

    n_layers = len(config.sizes) - 2
    fig, axes = plt.subplots(len(config.schemes), n_layers, squeeze=False,
                             figsize=(1.6 * n_layers + 1, 1.5 * len(config.schemes) + 0.8),
                             sharex=True)
    for row, scheme in enumerate(config.schemes):
        params, x, y = make_inputs(config.problem(scheme))
        _, _, route = compute_route(params, x, y, dtype=config.dtype)
        for col, t in enumerate(route["t"]):
            ax = axes[row][col]
            ax.hist(t.ravel(), bins=40, range=(-1, 1), color=f"C{row}")
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"layer {col + 1}", fontsize=9)
            if col == 0:
                ax.set_ylabel(scheme, fontsize=9)
    fig.suptitle("Histogram of t = tanh(z) per layer: mass at +-1 is dead tanh", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "activations.png", dpi=100)
    plt.close(fig)
    return ["courier.png", "activations.png"]


def _fmt(frame: pd.DataFrame) -> str:
    def cell(value):
        if isinstance(value, (bool, np.bool_, str, int, np.integer)):
            return str(value)
        return f"{value:.3g}"
    return frame.map(cell).to_markdown(index=False)


def markdown(config: DiagnoseConfig, layers: pd.DataFrame, agreement: pd.DataFrame,
             pictures: list[str]) -> str:
    scale = {s: config.problem(s).scale for s in config.schemes}
    lines = [
        "# The courier's journey", "",
        f"Network {','.join(map(str, config.sizes))}, batch {config.batch}, {config.dtype}, seed "
        f"{config.seed}; saturated means |t| > {config.threshold}. Inits: "
        + "; ".join(f"{s} ({config.problem(s).init}, weight scale {scale[s]:g})" for s in config.schemes)
        + ".", "",
        "The message leaves the loss as d loss / d out and walks back through the layers; at each "
        "one it is carried through the weights and multiplied by tanh's local gradient 1 - t^2. "
        "`surviving` is the share of it that the tanh gates let through on the way to each layer; "
        "`message_ratio` its size there next to the message that left the loss, weights "
        "included; `dead_units` the units saturated for every example (they get no gradient).", "",
        "## Per layer", "", _fmt(layers), "",
        "## Where the message dies", "",
    ]
    for scheme, group in layers.groupby("init", sort=False):
        last = group.iloc[0]  # layer 1: the end of the walk
        lines.append(f"- **{scheme}**: {group['saturated'].mean():.0%} of activations saturated on "
                     f"average, {int(group['dead_units'].sum())} dead units; the tanh gates let "
                     f"{last['surviving']:.2g} of the message through to layer 1, where it is "
                     f"{last['message_ratio']:.2g} times the size it left the loss with.")
    lines += ["", f"## Agreement with the float64 oracle by init ({config.dtype})", "",
              "Saturation is where the implementations' results drift apart: the largest normwise "
              "relative error per implementation, and the gate's err_ratio (<= 1 passes).", "",
              _fmt(agreement), ""]
    lines += [f"![{p}]({p})" for p in pictures]
    return "\n".join(lines) + "\n"


def write(config: DiagnoseConfig, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write diagnostics.csv, diagnostics.md, agreement_by_init.csv and plots into ``out``.

    They are written to a temporary folder beside ``out`` and moved into place when complete.
    """
    staging = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    staging.mkdir(parents=True)
    try:
        layers, agreement = diagnose(config)
        layers.to_csv(staging / "diagnostics.csv", index=False)
        agreement.to_csv(staging / "agreement_by_init.csv", index=False)
        pictures = _plots(config, layers, staging)
        (staging / "diagnostics.md").write_text(markdown(config, layers, agreement, pictures))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return layers, agreement


def default_output(results_dir: Path) -> Path:
    return results_dir / ("diagnose-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))


def with_overrides(config: DiagnoseConfig, **changes) -> DiagnoseConfig:
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
