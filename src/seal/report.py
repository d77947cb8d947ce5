"""report.md and results.png of a run, from its summary.json (`seal report RUN_DIR`).

Any summary renders the same way, whichever recipe made it: the rows table, the ReST-EM rounds, then the
recipe's sections (tables, heatmaps) in order. results.png shows the rows (± s.e.m.) and the reward per round,
or the heatmaps when a summary has no rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from seal.results import Heatmap, Row, Summary, Table


def table_cells(rows: list[Row], unit: str = "passages", level: float = 0.95) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of a results table, shared by the console and report.md: accuracy, its
    bootstrap interval, std over items; `best of` (ARC) and `F1` (the f1 grader's mean token F1) where rows have
    them; `invalid` counts self-edits that could not be trained."""
    optional = [("best of", "best_of"), ("F1", "f1_mean"), ("generated", "generated_accuracy")]
    extra = [(h, k) for h, k in optional if any(getattr(r, k) is not None for r in rows)]
    ci = any(r.ci_low is not None for r in rows)
    headers = ["row", "accuracy"] + ([f"{100 * level:.0f}% CI"] if ci else []) + ["std"] + [h for h, _ in extra] + \
        [unit, "questions", "invalid", "ungraded"]
    cells = []
    for r in rows:
        interval = [f"{100 * r.ci_low:.1f}–{100 * r.ci_high:.1f}" if r.ci_low is not None else ""] if ci else []
        cells.append([r.name, f"{100 * r.accuracy:.1f}", *interval, f"{100 * r.std:.1f}",
                      *(f"{100 * (getattr(r, k) or 0):.1f}" for _, k in extra), str(r.n_passages), str(r.n_questions),
                      str(r.invalid), str(r.ungraded)])
    return headers, cells


def comparisons_table(summary: Summary) -> Table:
    return Table("Paired comparisons",
                 ["row", "baseline", "figure", "difference", f"{100 * summary.confidence:.0f}% CI", "p", "pairs"],
                 [[c.row, c.baseline, c.metric, f"{100 * c.diff:+.1f}",
                   f"{100 * c.ci_low:+.1f} to {100 * c.ci_high:+.1f}", f"{c.p_value:.3g}", str(c.n)]
                  for c in summary.comparisons],
                 note=f"Row minus baseline in points, paired by {summary.unit.rstrip('s')}: paired bootstrap interval "
                      "and two-sided sign-flip p-value (docs/knowledge.md).")


def rounds_table(summary: Summary) -> Table:
    return Table("ReST-EM rounds", ["round", "mean reward", "no adaptation", "scored", "kept", "seconds"],
                 [[str(r.round), f"{100 * r.mean_reward:.1f}", f"{100 * r.mean_baseline:.1f}", str(r.n_scored),
                   str(r.n_kept) if r.policy_updated else f"{r.n_kept} (policy unchanged)", f"{r.seconds:.0f}"]
                  for r in summary.rounds])


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
        lines += [f"Accuracy (%) on {summary.title}.", "",
                  markdown_table(*table_cells(summary.rows, summary.unit, summary.confidence)), ""]
    sections = ([comparisons_table(summary)] if summary.comparisons else []) + \
        ([rounds_table(summary)] if summary.rounds else []) + summary.sections
    for s in sections:
        headers, cells = (s.headers, s.cells) if isinstance(s, Table) else heatmap_cells(s)
        lines += [f"## {s.title}", ""] + ([s.note, ""] if s.note else []) + [markdown_table(headers, cells), ""]
    if summary.rows or any(isinstance(s, Heatmap) for s in summary.sections):
        lines += ["![results](results.png)", ""]
    if summary.provenance:
        lines += [f"Produced by {produced_by(summary.provenance)}.", ""]
    return "\n".join(lines)


def produced_by(p: dict) -> str:
    """One line of what made a run, from its provenance: enough to rerun it and get the same table."""
    seal = f"seal {p.get('seal') or '?'}" + (f" (commit {p['commit'][:12]})" if p.get("commit") else "")
    libs = [f"{k} {p[k]}" for k in ("torch", "transformers", "peft") if p.get(k)]
    where = " ".join(str(p[k]) for k in ("device", "dtype") if p.get(k))
    threads = f"{p['threads']} torch thread{'s' * (p['threads'] != 1)}" if p.get("threads") else None
    python = f"Python {p['python']}" if p.get("python") else None
    return ", ".join(x for x in [seal, *libs, python, where, threads, p.get("cpu")] if x)


def write_report(run_dir: str | Path) -> Path:
    """report.md and results.png from summary.json."""
    run_dir = Path(run_dir)
    summary = Summary.from_json(json.loads((run_dir / "summary.json").read_text()))
    plot(summary, run_dir / "results.png")
    out = run_dir / "report.md"
    out.write_text(markdown(summary))
    return out


# --- several runs of one config at different seeds ---


def seed_report(run_dirs: list[Path], out_dir: Path) -> Path:
    """report.md, results.png and seeds.json for runs of the same config at different seeds: each row's mean
    ± std across seeds with every seed's value, and each paired comparison's margin per seed."""
    from seal.stats import seed_summary

    runs = [Path(d) for d in run_dirs]
    summaries = [Summary.from_json(json.loads((d / "summary.json").read_text())) for d in runs]
    seeds = [_same_config_but_seed(runs[0], d) for d in runs]
    names = [r.name for r in summaries[0].rows if all(any(x.name == r.name for x in s.rows) for s in summaries)]
    rows = {n: [s.row(n).accuracy for s in summaries] for n in names}
    keys = [(c.row, c.baseline, c.metric) for c in summaries[0].comparisons]
    margins = {k: [next((c for c in s.comparisons if (c.row, c.baseline, c.metric) == k), None) for s in summaries]
               for k in keys}
    margins = {k: cs for k, cs in margins.items() if all(c is not None for c in cs)}
    seed_cols = [f"seed {s}" for s in seeds]
    row_table = Table(f"Accuracy (%) across {len(runs)} seeds",
                      ["row", "mean", "std", *seed_cols],
                      [[n, f"{100 * (m := seed_summary(v)).mean:.1f}", f"{100 * m.std:.1f}",
                        *(f"{100 * x:.1f}" for x in v)] for n, v in rows.items()])
    margin_table = Table("Margins per seed (points, row minus baseline)",
                         ["row", "baseline", "figure", "mean", "std", *seed_cols, "CI above 0"],
                         [[r, b, f, f"{100 * (m := seed_summary([c.diff for c in cs])).mean:+.1f}",
                           f"{100 * m.std:.1f}", *(f"{100 * c.diff:+.1f}" for c in cs),
                           f"{sum(c.ci_low > 0 for c in cs)} of {len(cs)}"] for (r, b, f), cs in margins.items()],
                         note="Each seed's difference comes with its own paired interval (the run's report.md); "
                              "`CI above 0` counts the seeds whose interval excludes zero.")
    provenance = [s.provenance for s in summaries]
    recorded = dict.fromkeys(k for p in provenance for k in p)  # every key any run recorded, in order
    differ = [k for k in recorded if len({str(p.get(k)) for p in provenance}) > 1]
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": summaries[0].config, "runs": [str(d) for d in runs], "seeds": seeds,
              "provenance": provenance, "provenance_differs": differ,
              "rows": {n: {"mean": seed_summary(v).mean, "std": seed_summary(v).std, "per_seed": v}
                       for n, v in rows.items()},
              "margins": [{"row": r, "baseline": b, "metric": f, "per_seed": [c.diff for c in cs],
                           "ci_above_zero": sum(c.ci_low > 0 for c in cs)} for (r, b, f), cs in margins.items()]}
    (out_dir / "seeds.json").write_text(json.dumps(record, indent=2))
    _plot_seeds(rows, seeds, out_dir / "results.png")
    lines = [f"# {summaries[0].config}: {len(runs)} seeds", "", ", ".join(f"seed {s}: `{d}`" for s, d in
                                                                           zip(seeds, runs)), ""]
    tables = [row_table, margin_table]
    if differ:
        tables.append(Table("What produced each run", ["seed", *differ],
                            [[str(seed), *(str(p.get(k, "")) for k in differ)] for seed, p in zip(seeds, provenance)],
                            note=f"The runs differ in {', '.join(differ)}: part of the spread between seeds may come "
                                 "from that (another torch thread count or library version sums floats in another "
                                 "order) rather than from the seed."))
    for t in tables:
        lines += [f"## {t.title}", ""] + ([t.note, ""] if t.note else []) + [markdown_table(t.headers, t.cells), ""]
    lines += ["![results](results.png)", ""]
    if not differ and provenance[0]:
        lines += [f"Every run produced by {produced_by(provenance[0])}.", ""]
    (out_dir / "report.md").write_text("\n".join(lines))
    return out_dir / "report.md"


def _same_config_but_seed(first: Path, other: Path) -> int:
    """`other`'s seed, after checking that its config equals `first`'s in every results-changing key but the
    seed (ValueError naming the keys otherwise)."""
    import yaml

    from seal.config import changed_keys

    a, b = (yaml.safe_load((d / "config.yaml").read_text()) or {} for d in (first, other))
    diff = [k for k, _, _ in changed_keys(a, b) if k != "seed"]
    if diff:
        raise ValueError(f"{other} is not a run of {first}'s config at another seed: {', '.join(diff[:8])} differ")
    return int(b.get("seed", 0))


def _plot_seeds(rows: dict[str, list[float]], seeds: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(rows)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    means = [100 * np.mean(rows[n]) for n in names]
    stds = [100 * np.std(rows[n], ddof=1) if len(rows[n]) > 1 else 0.0 for n in names]
    ax.barh(names, means, xerr=stds, color="#4c72b0", alpha=0.7, capsize=3)
    for i, n in enumerate(names):
        ax.scatter([100 * v for v in rows[n]], [i] * len(rows[n]), color="black", s=12, zorder=3)
    ax.set_xlabel(f"accuracy (%): mean ± std over seeds {', '.join(map(str, seeds))}; dots: each seed")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
