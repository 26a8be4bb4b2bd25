"""The search space as data: ``FIELD: SPEC`` pairs from YAML (``search.space``) or ``--space``.

``FIELD`` is any option of the model (``hidden``, ``dropout``, ``embed_dim``, ...) or any train
field (``lr``, ``batch_size``, ``weight_decay``, ...); a trial replaces whatever its space names
and keeps the rest of the run's settings. ``SPEC`` is one of

    uniform[a, b]  loguniform[a, b]  randint[a, b]  lograndint[a, b]    (bounds included)
    choice[v1, v2, ...]              grid[v1, v2, ...]                  (listed values)

Without a space the search runs the documented default: LSTM width log-uniform over
``--hidden-min..--hidden-max`` and dropout uniform over ``--dropout-min..--dropout-max`` (or the
values of ``--hidden-values``/``--dropout-values``), plus the learning rate with ``--search-lr``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from seqlab.errors import SeqlabError

KINDS = ("uniform", "loguniform", "randint", "lograndint", "choice", "grid")
_SPEC = re.compile(r"^\s*([a-z]+)\s*\[(.*)\]\s*$", re.S)
# how trial names abbreviate the default space's fields (h128-do0.3000-lr2.9e-03)
_SHORT = {"hidden": ("h", "{:03d}"), "dropout": ("do", "{:.4f}"), "lr": ("lr", "{:.1e}")}


@dataclass(frozen=True)
class Dim:
    """One searched field: a distribution over a range, or listed values."""

    kind: str  # one of KINDS
    values: tuple  # (low, high) for the ranges, the values for choice and grid

    @property
    def log(self) -> bool:
        return self.kind in ("loguniform", "lograndint")

    def __str__(self) -> str:
        return f"{self.kind}[{', '.join(str(v) for v in self.values)}]"


def _value(text: str) -> Any:
    text = text.strip().strip("'\"")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_dim(name: str, spec: Any) -> Dim:
    """``Dim`` of one ``FIELD: SPEC`` pair; a bad spec is refused naming the field."""
    if isinstance(spec, list):  # YAML: hidden: [32, 64, 128] lists values
        spec = f"choice[{', '.join(str(v) for v in spec)}]"
    m = _SPEC.match(str(spec))
    if not m or m.group(1) not in KINDS:
        raise SeqlabError(f"search space {name}: {spec!r} is not a spec; expected one of uniform[a, b], "
                          f"loguniform[a, b], randint[a, b], lograndint[a, b], choice[v, ...], grid[v, ...]")
    kind = m.group(1)
    values = tuple(_value(v) for v in m.group(2).split(",") if v.strip())
    if kind in ("choice", "grid"):
        if not values:
            raise SeqlabError(f"search space {name}: {kind}[...] needs at least one value")
        return Dim(kind, values)
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise SeqlabError(f"search space {name}: {kind} needs two numbers, low and high, got {spec!r}")
    low, high = values
    if not low <= high:
        raise SeqlabError(f"search space {name}: low {low} is above high {high}")
    if kind in ("randint", "lograndint") and not all(float(v).is_integer() for v in values):
        raise SeqlabError(f"search space {name}: {kind} needs whole numbers, got {spec!r}")
    if kind.startswith("log") and low <= 0:
        raise SeqlabError(f"search space {name}: {kind} needs a low bound above 0, got {low}")
    return Dim(kind, (int(low), int(high)) if kind.endswith("randint") else (float(low), float(high)))


def parse_space(space: dict) -> dict[str, Dim]:
    if not isinstance(space, dict) or not space:
        raise SeqlabError(f"search space: expected a mapping of FIELD: SPEC, got {space!r}")
    dims = {str(k): parse_dim(str(k), v) for k, v in space.items()}
    grid = [k for k, d in dims.items() if d.kind == "grid"]
    if grid and len(grid) != len(dims):
        raise SeqlabError(f"search space: {grid[0]} is a grid but {sorted(set(dims) - set(grid))[0]} is not; a grid "
                          f"search runs every combination, so give every field as grid[...]")
    return dims


def space_of(cfg) -> dict[str, Dim]:
    """The space a search config describes: ``cfg.space`` or the default width x dropout space."""
    if cfg.space:
        return parse_space(cfg.space)
    hidden, dropout = cfg.values("hidden"), cfg.values("dropout")
    pick = "grid" if cfg.grid else "choice"
    dims = {"hidden": Dim(pick, tuple(int(h) for h in hidden)) if hidden
            else Dim("lograndint", (cfg.hidden_min, cfg.hidden_max)),
            "dropout": Dim(pick, tuple(dropout)) if dropout else Dim("uniform", (cfg.dropout_min, cfg.dropout_max))}
    if cfg.search_lr:
        dims["lr"] = Dim("loguniform", (3e-4, 1e-2))
    return dims


def is_grid(dims: dict[str, Dim]) -> bool:
    return any(d.kind == "grid" for d in dims.values())


def to_tune(dims: dict[str, Dim]) -> dict:
    """Ray Tune's ``param_space`` of the dims (integer ranges include their upper bound)."""
    from ray import tune

    make = {"uniform": lambda lo, hi: tune.uniform(lo, hi), "loguniform": lambda lo, hi: tune.loguniform(lo, hi),
            "randint": lambda lo, hi: tune.randint(lo, hi + 1), "lograndint": lambda lo, hi: tune.lograndint(lo, hi + 1)}
    out = {}
    for name, d in dims.items():
        if d.kind == "choice":
            out[name] = tune.choice(list(d.values))
        elif d.kind == "grid":
            out[name] = tune.grid_search(list(d.values))
        else:
            out[name] = make[d.kind](*d.values)
    return out


def trial_name(config: dict) -> str:
    """A trial's name from its config alone (Tune's trial ids are random): ``h128-do0.3000``, or
    ``FIELDvalue`` joined by ``-`` for fields other than width, dropout and learning rate."""
    parts = []
    for name, value in config.items():
        short, fmt = _SHORT.get(name, (name, None))
        if fmt is not None:
            parts.append(short + fmt.format(int(value) if "d" in fmt else float(value)))
        elif isinstance(value, float):
            parts.append(f"{name}{value:.4g}")
        else:
            parts.append(f"{name}{value}")
    return "-".join(parts)


def column(dim: Dim, value: Any) -> Any:
    """A searched value as the results table keeps it: whole numbers as ints, uniform (and listed)
    floats to 4 places, log-uniform floats whole."""
    if isinstance(value, (bool, str)):
        return value
    if dim.kind.endswith("randint") or isinstance(value, int):
        return int(value)
    if dim.kind == "uniform" or (dim.kind in ("choice", "grid") and abs(value) >= 1e-3):
        return round(float(value), 4)
    return float(value)
