"""Tables, plots and report.md of a run, from its store and summary.json (`seal report RUN_DIR`)."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from seal.domains.base import Context, Score, mean
from seal.store import ScoreKey, Store


def summarize_row(name: str, scores: dict[ScoreKey, Score], contexts: list[Context]) -> dict:
    """One table row: accuracy averaged per passage (over samples and repeats), then over passages."""
    per_ctx: dict[str, list[float]] = defaultdict(list)
    for k, s in scores.items():
        per_ctx[k.context_id].append(s.accuracy)
    accs = [mean(v) for v in per_ctx.values()]
    n_questions = sum(len(c.questions) for c in contexts if c.id in per_ctx)
    return {
        "name": name,
        "accuracy": mean(accs),
        "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "n_passages": len(accs),
        "n_questions": n_questions,
        "ungraded": sum(s.n_ungraded for s in scores.values()),
        "invalid": sum(s.invalid is not None for s in scores.values()),
        "failed": sum(s.failed is not None for s in scores.values()),
    }


def round_rows(store: Store) -> list[dict]:
    return [{"round": r.round, "mean_reward": r.mean_reward, "mean_baseline": r.mean_baseline,
             "n_scored": r.n_scored, "n_kept": r.n_kept, "seconds": r.seconds} for r in store.rounds()]


def table_cells(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of a results table, shared by the console and report.md. ARC rows (they
    have `best_of`) count tasks and show the best-of-k column; `invalid` counts self-edits that could not be
    trained."""
    arc = any("best_of" in r for r in rows)
    headers = ["row", "accuracy", "std", "tasks" if arc else "passages", "questions", "invalid", "ungraded"]
    if arc:
        headers.insert(3, "best of")
    cells = []
    for r in rows:
        row = [r["name"], f"{100 * r['accuracy']:.1f}", f"{100 * r['std']:.1f}", str(r["n_passages"]),
               str(r["n_questions"]), str(r.get("invalid", 0)), str(r["ungraded"])]
        if arc:
            row.insert(3, f"{100 * r.get('best_of', 0):.1f}")
        cells.append(row)
    return headers, cells


def markdown_table(rows: list[dict]) -> str:
    headers, cells = table_cells(rows)
    lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, rounds = summary["rows"], summary["rounds"]
    fig, axes = plt.subplots(1, 2 if rounds else 1, figsize=(11 if rounds else 6, 4), squeeze=False)
    ax = axes[0][0]
    names = [r["name"] for r in rows]
    ax.barh(names[::-1], [100 * r["accuracy"] for r in rows][::-1],
            xerr=[100 * r["std"] / max(1, r["n_passages"]) ** 0.5 for r in rows][::-1], color="#4c72b0")
    ax.set_xlabel("accuracy on held-out passages (%), ± s.e.m.")
    ax.set_title("results table")
    if rounds:
        ax = axes[0][1]
        xs = [r["round"] for r in rounds]
        ax.plot(xs, [100 * r["mean_reward"] for r in rounds], "o-", label="mean reward (adapted)")
        ax.plot(xs, [100 * r["mean_baseline"] for r in rounds], "s--", label="no adaptation")
        ax.set_xlabel("ReST-EM round")
        ax.set_ylabel("accuracy on training passages (%)")
        ax.set_xticks(xs)
        ax.legend()
        ax.set_title("reward per round")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(run_dir: str | Path) -> Path:
    """report.md and results.png from summary.json."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    if summary.get("experiment") == "continual":
        from seal.experiments.continual import write_continual_report

        return write_continual_report(run_dir, summary)
    plot(summary, run_dir / "results.png")
    lines = [f"# {summary.get('config', run_dir.name)}", "", markdown_table(summary["rows"]), ""]
    if summary["rounds"]:
        lines += ["## ReST-EM rounds", "", "| round | mean reward | no adaptation | scored | kept | seconds |",
                  "|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['round']} | {100 * r['mean_reward']:.1f} | {100 * r['mean_baseline']:.1f} | "
                  f"{r['n_scored']} | {r['n_kept']} | {r['seconds']:.0f} |" for r in summary["rounds"]]
        lines.append("")
    if summary.get("updates"):
        lines += ["## Updates", "", "| row | sequences | tokens | steps | first loss | last loss | seconds |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {name} | {u['sequences']} | {u['tokens']} | {u['steps']} | {u['first_loss']:.3f} | "
                  f"{u['last_loss']:.3f} | {u['seconds']:.0f} |" for name, u in summary["updates"].items()]
        lines.append("")
    if summary.get("configs"):
        lines += ["## Configs written", "", "| self-edits | n | valid | median lr | mean epochs | basic | size | chain "
                  "| repeat | output only |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, p in summary["configs"].items():
            if not p.get("valid"):
                lines.append(f"| {name} | {p['n']} | 0 | | | | | | | |")
                continue
            lines.append(f"| {name} | {p['n']} | {p['valid']} | {p['median_lr']:.0e} | {p['mean_epochs']:.1f} | "
                         + " | ".join(f"{100 * p[f'uses_{g}']:.0f}%" for g in ("basic", "size", "chain", "repeat"))
                         + f" | {100 * p['output_only']:.0f}% |")
        lines.append("")
    if summary.get("config_rewards"):
        lines += ["## Reward by config choice", "",
                  "Every scored config of the run (training rounds and eval rows), grouped by each choice it made.",
                  "", "| choice | value | configs | mean reward |", "|---|---|---:|---:|"]
        lines += [f"| {c['choice']} | {c['value']} | {c['n']} | {100 * c['reward']:.1f} |"
                  for c in summary["config_rewards"]]
        lines.append("")
    lines += ["![results](results.png)", ""]
    out = run_dir / "report.md"
    out.write_text("\n".join(lines))
    return out
