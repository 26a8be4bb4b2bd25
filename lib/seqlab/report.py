"""Tables and learning curves of finished runs, read back from their TensorBoard event files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def tensorboard_history(folder: str | Path) -> pd.DataFrame:
    """One row per epoch, one column per scalar (``train/loss``, ``val/macro_f1``, ...).

    A resumed run writes a second event file; the last value logged for an epoch wins.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows: dict[int, dict[str, float]] = {}
    for events in sorted(Path(folder).glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            for e in acc.Scalars(tag):
                rows.setdefault(e.step, {})[tag] = e.value
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("epoch").sort_index()


def plot_curves(histories: dict[str, pd.DataFrame], path: Path, metric: str, title: str) -> None:
    """A panel per run: train and validation loss (left axis) and the validation metric (right axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    n = len(histories)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False, constrained_layout=True)
    for ax, (name, h) in zip(axes.flat, histories.items()):
        ax.plot(h.index, h["train/loss"], "o-", label="train loss")
        ax.plot(h.index, h["val/loss"], "s-", label="val loss")
        ax.set(title=name, xlabel="epoch", ylabel="loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        right = ax.twinx()
        right.plot(h.index, h[metric], "^--", color="tab:green", label=metric)
        right.set_ylabel(metric)
        lines = ax.get_lines() + right.get_lines()
        ax.legend(lines, [x.get_label() for x in lines], fontsize=7, loc="best")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_run(history: pd.DataFrame, path: Path, title: str) -> list[str]:
    """One run's curves (a :func:`tensorboard_history`), a panel per validation metric with its train curve
    when there is one (the loss first); only train metrics when there are none. Returns the metrics drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    def named(split: str) -> set[str]:
        return {c.split("/", 1)[1] for c in history.columns if c.startswith(f"{split}/")}

    metrics = sorted(named("val") or named("train"), key=lambda m: (m != "loss", m))
    if not metrics:
        return []
    cols = min(len(metrics), 3)
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False, constrained_layout=True)
    for ax, metric in zip(axes.flat, metrics):
        for split, style, color in (("train", "o-", "tab:blue"), ("val", "s-", "tab:orange")):
            if f"{split}/{metric}" in history:
                h = history[f"{split}/{metric}"].dropna()
                ax.plot(h.index, h.to_numpy(), style, color=color, label=f"{split} {metric.replace('_', ' ')}")
        ax.set(title=metric.replace("_", " "), xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return metrics


def markdown_table(df: pd.DataFrame, floats: str = "{:.3f}", formats: dict[str, str] | None = None) -> str:
    """A GitHub Markdown table; numbers formatted (``formats`` per column), missing values as an en dash."""
    formats = formats or {}

    def cell(v, column: str) -> str:
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return "–"
        return formats.get(column, floats).format(v) if isinstance(v, float) else str(v)

    head = "| " + " | ".join(df.columns) + " |\n|" + "|".join("---" for _ in df.columns) + "|\n"
    return head + "\n".join("| " + " | ".join(cell(v, c) for v, c in zip(row, df.columns)) + " |"
                             for row in df.itertuples(index=False))
