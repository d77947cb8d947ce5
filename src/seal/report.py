"""report.md and results.png of a run, from its summary.json (`seal report RUN_DIR`).

Any summary renders the same way, whichever recipe made it: the rows table, the ReST-EM rounds, then the
recipe's sections (tables, heatmaps) in order. results.png shows the rows (± s.e.m.) and the reward per round,
or the heatmaps when a summary has no rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from seal.results import Heatmap, Row, Summary, Table


def table_cells(rows: list[Row], unit: str = "passages") -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of a results table, shared by the console and report.md. Rows with
    `best_of` (ARC) add the best-of-k column; `invalid` counts self-edits that could not be trained."""
    best = any(r.best_of is not None for r in rows)
    headers = ["row", "accuracy", "std", unit, "questions", "invalid", "ungraded"]
    if best:
        headers.insert(3, "best of")
    cells = []
    for r in rows:
        row = [r.name, f"{100 * r.accuracy:.1f}", f"{100 * r.std:.1f}", str(r.n_passages), str(r.n_questions),
               str(r.invalid), str(r.ungraded)]
        if best:
            row.insert(3, f"{100 * (r.best_of or 0):.1f}")
        cells.append(row)
    return headers, cells


def rounds_table(summary: Summary) -> Table:
    return Table("ReST-EM rounds", ["round", "mean reward", "no adaptation", "scored", "kept", "seconds"],
                 [[str(r.round), f"{100 * r.mean_reward:.1f}", f"{100 * r.mean_baseline:.1f}", str(r.n_scored),
                   str(r.n_kept), f"{r.seconds:.0f}"] for r in summary.rounds])


def heatmap_cells(h: Heatmap) -> tuple[list[str], list[list[str]]]:
    return [h.ylabel or "", *h.col_labels], [[label, *("" if v is None else f"{100 * v:.1f}" for v in row)]
                                             for label, row in zip(h.row_labels, h.values)]


def markdown_table(headers: list[str], cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def plot(summary: Summary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heatmaps = [s for s in summary.sections if isinstance(s, Heatmap)]
    if summary.rows:
        fig = _plot_rows(plt, summary)
    elif heatmaps:
        fig = _plot_heatmaps(plt, heatmaps)
    else:
        return
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_rows(plt, summary: Summary):
    rows, rounds = summary.rows, summary.rounds
    fig, axes = plt.subplots(1, 2 if rounds else 1, figsize=(11 if rounds else 6, 4), squeeze=False)
    ax = axes[0][0]
    names = [r.name for r in rows]
    ax.barh(names[::-1], [100 * r.accuracy for r in rows][::-1],
            xerr=[100 * r.std / max(1, r.n_passages) ** 0.5 for r in rows][::-1], color="#4c72b0")
    ax.set_xlabel(f"accuracy on {summary.title} (%), ± s.e.m.")
    ax.set_title("results table")
    if rounds:
        ax = axes[0][1]
        xs = [r.round for r in rounds]
        ax.plot(xs, [100 * r.mean_reward for r in rounds], "o-", label="mean reward (adapted)")
        ax.plot(xs, [100 * r.mean_baseline for r in rounds], "s--", label="no adaptation")
        ax.set_xlabel("ReST-EM round")
        ax.set_ylabel("accuracy on training passages (%)")
        ax.set_xticks(xs)
        ax.legend()
        ax.set_title("reward per round")
    fig.tight_layout()
    return fig


def _plot_heatmaps(plt, heatmaps: list[Heatmap]):
    import numpy as np

    mats = [np.array([[np.nan if v is None else v for v in row] for row in h.values], dtype=float) for h in heatmaps]
    top = 100 * max(0.1, max(float(np.nanmax(m)) for m in mats))  # one colour scale for all panels
    fig, axes = plt.subplots(1, len(heatmaps), figsize=(5.4 * len(heatmaps), 4.6), squeeze=False)
    fig.subplots_adjust(wspace=0.35)
    for ax, h, m in zip(axes[0], heatmaps, mats):
        im = ax.imshow(100 * m, vmin=0, vmax=top, cmap="viridis")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if not np.isnan(m[i, j]):
                    ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if 100 * m[i, j] < top / 2 else "black")
        ax.set_xticks(range(m.shape[1]), h.col_labels)
        ax.set_yticks(range(m.shape[0]), h.row_labels)
        ax.set_xlabel(h.xlabel)
        ax.set_ylabel(h.ylabel)
        ax.set_title(h.title)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="accuracy (%)")
    return fig


def markdown(summary: Summary) -> str:
    lines = [f"# {summary.config}", ""]
    if summary.rows:
        lines += [f"Accuracy (%) on {summary.title}.", "", markdown_table(*table_cells(summary.rows, summary.unit)),
                  ""]
    sections = ([rounds_table(summary)] if summary.rounds else []) + summary.sections
    for s in sections:
        headers, cells = (s.headers, s.cells) if isinstance(s, Table) else heatmap_cells(s)
        lines += [f"## {s.title}", ""] + ([s.note, ""] if s.note else []) + [markdown_table(headers, cells), ""]
    if summary.rows or any(isinstance(s, Heatmap) for s in summary.sections):
        lines += ["![results](results.png)", ""]
    return "\n".join(lines)


def write_report(run_dir: str | Path) -> Path:
    """report.md and results.png from summary.json."""
    run_dir = Path(run_dir)
    summary = Summary.from_json(json.loads((run_dir / "summary.json").read_text()))
    plot(summary, run_dir / "results.png")
    out = run_dir / "report.md"
    out.write_text(markdown(summary))
    return out
