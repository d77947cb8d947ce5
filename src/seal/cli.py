"""`seal`: the command line. Thin: parse, load config, call a recipe."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="SEAL: language models that write their own finetuning data (self-edits), trained with "
                       "ReST-EM.")
world_app = typer.Typer(no_args_is_help=True, help="The built-in synthetic world and its tiny model.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")
data_app = typer.Typer(no_args_is_help=True, help="Data conversion.")
app.add_typer(world_app, name="world")
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")

REPO_ROOT = Path(__file__).resolve().parents[2]
SetOpt = typer.Option(None, "--set", help="Override a config key: --set inner.lr=3e-4 (repeatable).")


def _quiet_transformers() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # read when (if) datasets is imported
    # deprecation notices of the libraries' own internals (trl calling transformers), not of our calls
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|trl|peft)(\.|$)")


def _quiet_libraries() -> None:
    _quiet_transformers()
    try:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    except ImportError:
        pass


def _fail(msg: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {msg}", highlight=False, markup=True)
    raise typer.Exit(2)


def _print_summary(summary) -> None:
    """The rows table and every section of a summary (a `seal.results.Summary`), as the report shows them."""
    from rich.console import Console
    from rich.table import Table

    from seal.report import comparisons_table, heatmap_cells, table_cells
    from seal.results import Table as TableSection

    console = Console(width=None if sys.stdout.isatty() else 120)  # logs and pipes: no squeezed columns

    def show(title: str, headers: list[str], cells: list[list[str]]) -> None:
        table = Table(title=title)
        for i, col in enumerate(headers):
            table.add_column(col, justify="left" if i == 0 else "right", no_wrap=i == 0,
                             min_width=max(len(row[0]) for row in cells) if i == 0 and cells else None)
        for row in cells:
            table.add_row(*row)
        console.print(table)

    if summary.rows:
        show(summary.title, *table_cells(summary.rows, summary.unit, summary.confidence))
    if summary.comparisons:
        c = comparisons_table(summary)
        show(c.title, c.headers, c.cells)
    for s in summary.sections:
        if isinstance(s, TableSection):
            if not summary.rows:  # a table-less summary (continual): its sections are the result
                show(s.title, s.headers, s.cells)
        else:
            show(s.title, *heatmap_cells(s))


def _run(config: Path | None, overrides: list[str], run_dir: Optional[Path], extra: list[str] = ()) -> dict:
    from seal.config import ConfigError, load_config
    from seal.data import DataError
    from seal.model import ModelLoadError
    from seal.progress import setup_logging

    setup_logging()
    _quiet_libraries()
    try:
        cfg = load_config(config, list(overrides or []) + list(extra))
        from seal.experiments import recipe

        out = run_dir or Path("runs") / cfg.name
        summary = recipe(cfg.experiment).main(cfg, out)
    except (ConfigError, DataError, ModelLoadError) as e:
        _fail(str(e))
    _print_summary(summary)
    typer.echo(f"\nrun directory: {out}  (summary.json, report.md, results.png)")
    return summary


@app.command()
def run(config: Path = typer.Argument(..., help="YAML config file."), set_: list[str] = SetOpt,
        run_dir: Optional[Path] = typer.Option(None, help="Run directory (default runs/<name>); an existing one "
                                                              "is resumed.")):
    """Run an experiment: ReST-EM rounds, then the results table. Rerun to resume."""
    _run(config, set_, run_dir)


@app.command("eval")
def eval_(config: Path = typer.Argument(..., help="YAML config file."), set_: list[str] = SetOpt,
          run_dir: Optional[Path] = typer.Option(None, help="Run directory (default runs/<name>-eval).")):
    """The results table of `model.name_or_path` without RL (point it at a SEAL checkpoint to evaluate that)."""
    from seal.config import load_config

    name = load_config(config, list(set_ or [])).name
    _run(config, set_, run_dir or Path("runs") / f"{name}-eval", extra=["restem.rounds=0"])


@app.command()
def report(run_dirs: list[Path] = typer.Argument(..., help="A run directory, or several runs of one config at "
                                                               "different seeds."),
           out: Optional[Path] = typer.Option(None, help="With several runs: where the seed report goes (default "
                                                         "<first run>-seeds).")):
    """Regenerate report.md and results.png of a run from its summary.json; given several runs of the same
    config at different seeds, write one report of mean ± std across seeds and every seed's margins."""
    import json

    from seal.report import seed_report, write_report
    from seal.results import Summary

    for d in run_dirs:
        if not (d / "summary.json").exists():
            _fail(f"{d}/summary.json not found: has the run finished its table?")
    if len(run_dirs) > 1:
        try:
            path = seed_report(run_dirs, out or run_dirs[0].with_name(run_dirs[0].name + "-seeds"))
        except ValueError as e:
            _fail(str(e))
        typer.echo(path.read_text())
        typer.echo(f"wrote {path}")
        return
    path = write_report(run_dirs[0])
    _print_summary(Summary.from_json(json.loads((run_dirs[0] / "summary.json").read_text())))
    typer.echo(f"wrote {path}")


def _config_path(name: str) -> Path:
    for root in (Path.cwd(), REPO_ROOT):
        if (root / name).exists():
            return root / name
    _fail(f"{name} not found (run from the repository root)")


DEMOS = {"knowledge": "configs/tiny/knowledge.yaml", "cpt": "configs/tiny/cpt.yaml",
         "continual": "configs/tiny/continual.yaml", "arc": "configs/tiny/arc.yaml",
         "label-free": "configs/tiny/label-free.yaml", "learn": "configs/tiny/learn.yaml"}
LEARN_DEMO_DOCUMENTS, LEARN_DEMO_CONTROL = 24, 24


@app.command()
def demo(which: str = typer.Argument("knowledge", help="knowledge (SEAL, 11 min), cpt (13 min), continual "
                                                       "(3 min), arc (19 min), label-free (8 min) or learn "
                                                       "(2 min); 2 CPU cores."),
         run_dir: Optional[Path] = typer.Option(None, help="Run directory (default runs/demo[-WHICH])."),
         set_: list[str] = SetOpt):
    """An experiment on the built-in world and tiny model, on a CPU (default: 2 ReST-EM rounds and the table)."""
    if which not in DEMOS:
        _fail(f"unknown demo '{which}': choose one of {', '.join(DEMOS)}")
    default = Path("runs/demo" if which == "knowledge" else f"runs/demo-{which}")
    extra: list[str] = []
    if which == "learn":  # the world's held-out passages written out as a folder of documents, then learned
        from seal.config import ConfigError, load_config
        from seal.world.demo_docs import write_demo_documents

        try:
            seed = load_config(_config_path(DEMOS[which]), list(set_ or [])).seed
        except ConfigError as e:
            _fail(str(e))
        files = write_demo_documents((run_dir or default).with_name((run_dir or default).name + "-input"),
                                     LEARN_DEMO_DOCUMENTS, LEARN_DEMO_CONTROL, seed)
        extra = [f"learn.documents=[{json.dumps(str(files.docs))}]", f"learn.gold={json.dumps(str(files.gold))}",
                 f"learn.control={json.dumps(str(files.control))}"]
    _run(_config_path(DEMOS[which]), list(set_ or []) + extra, run_dir or default)


@app.command()
def learn(docs: list[str] = typer.Argument(..., help="Files, directories (recursive) or globs: .txt .md .html "
                                                       ".pdf and .json/.jsonl records."),
          out: Path = typer.Option(..., help="Output directory (rerun the same command to resume)."),
          model: Optional[str] = typer.Option(None, help="Model to teach: a local dir, a hub id or `tiny` "
                                                         "(default: the config's model.name_or_path)."),
          config: Optional[Path] = typer.Option(None, help="A config with a `learn` section (configs/*/learn.yaml)."),
          policy: Optional[str] = typer.Option(None, help="A SEAL checkpoint that writes the self-edits."),
          mode: Optional[str] = typer.Option(None, help="merged (one update) or library (an adapter per document)."),
          gold: Optional[Path] = typer.Option(None, help="Records whose questions are asked before and after."),
          control: Optional[Path] = typer.Option(None, help="Records about other passages: a forgetting check."),
          set_: list[str] = SetOpt):
    """Documents in, a model that knows them out: self-edits chosen by the model's own questions, one update,
    and closed-book accuracy before and after (learn.json, report.md)."""
    extra = ["experiment=learn", f"learn.documents={json.dumps(docs)}"]
    extra += [f"{key}={json.dumps(str(v))}" for key, v in (("model.name_or_path", model), ("learn.policy", policy),
                                                           ("learn.mode", mode), ("learn.gold", gold),
                                                           ("learn.control", control)) if v is not None]
    _run(config, list(set_ or []) + extra, out)


@app.command()
def ask(out_dir: Path = typer.Argument(..., help="The --out of a finished `seal learn`."),
        question: Optional[str] = typer.Argument(None, help="A question; none: one per line from standard input."),
        base: bool = typer.Option(False, "--base", help="Answer with the model before learning, to compare."),
        max_new_tokens: int = typer.Option(64, help="Longest answer in tokens.")):
    """Answer closed-book through what `seal learn` wrote (the same prompt its report grades)."""
    from seal.ask import Learned, LearnedError
    from seal.model import ModelLoadError

    _quiet_libraries()
    questions = [question] if question else [q.strip() for q in sys.stdin if q.strip()]
    if not questions:
        _fail("no question: give one, or pipe questions in, one a line")
    try:
        learned = Learned.open(out_dir, base=base)
    except (LearnedError, ModelLoadError) as e:
        _fail(str(e))
    for q, a in zip(questions, learned.answer(questions, max_new_tokens)):
        typer.echo(a.strip() if len(questions) == 1 else f"{q}\t{a.strip()}")


@app.command("config-docs")
def config_docs(out: Path = typer.Option(Path("docs/config.md"), help="Where to write the reference.")):
    """Write the config reference (every key, its type, default, bounds and meaning)."""
    from seal.config import config_reference

    out.write_text(config_reference())
    typer.echo(f"wrote {out}")


@world_app.command("build")
def world_build(out: Optional[Path] = typer.Option(None, help="Output directory (default: the cache)."),
                epochs: Optional[int] = typer.Option(None, min=1, help="Pretraining epochs."),
                probe_every: int = typer.Option(0, min=0, help="Log closed-book recall and self-edit copying "
                                                                "every N steps (0: never)."),
                demos: Optional[int] = typer.Option(None, min=0, help="Throwaway-entity demonstrations per epoch."),
                drills: Optional[int] = typer.Option(None, min=0, help="Copy drills per epoch (induction)."),
                induction_steps: Optional[int] = typer.Option(None, min=0, help="Steps of an induction warm-up on "
                                                              "copy drills before the world corpus."),
                lr: Optional[float] = typer.Option(None, min=1e-8, help="Peak learning rate."),
                attention_lr_scale: Optional[float] = typer.Option(None, min=0.0, help="The corpus trains "
                                                                   "attention at lr times this."),
                init_from: Optional[Path] = typer.Option(None, "--from", help="Continue pretraining this build "
                                                         "(a later stage; corpus epochs start at 1000, no "
                                                         "induction warm-up unless --induction-steps)."),
                packing: Optional[str] = typer.Option(None, help="'documents' (blocks start at a document "
                                                      "boundary and are padded; the shipped build) or 'stream' "
                                                      "(documents end to end, cut every block)."),
                cache_dir: Optional[str] = typer.Option(None, help="Cache root (default $SEAL_CACHE or "
                                                                   "~/.cache/seal).")):
    """Pretrain the tiny model on the synthetic world (about 80 minutes on 2 CPU cores)."""
    from dataclasses import replace

    from seal.progress import setup_logging
    from seal.world.pretrain import cache_root
    from seal.world.tiny_knowledge import TinySpec, build_tiny_model

    setup_logging()
    _quiet_libraries()
    over = {k: v for k, v in {"epochs": epochs, "demos": demos, "drills": drills, "lr": lr,
                                 "packing": packing, "induction_steps": induction_steps,
                                 "attention_lr_scale": attention_lr_scale}.items()
            if v is not None}
    if packing not in (None, "stream", "documents"):
        raise typer.BadParameter(f"{packing!r}: expected 'stream' or 'documents'", param_hint="--packing")
    if init_from and not (init_from / "config.json").exists():
        raise typer.BadParameter(f"{init_from} is not a model directory (no config.json)", param_hint="--from")
    if init_from:
        over = {"first_epoch": 1000, "induction_steps": 0, **over}
    spec = replace(TinySpec(), probe_every=probe_every, **over)
    path = build_tiny_model(out or cache_root(cache_dir) / "tiny-knowledge", spec, init_from=init_from)
    typer.echo(f"built {path}")


@world_app.command("build-arc")
def world_build_arc(out: Optional[Path] = typer.Option(None, help="Output directory (default: the cache)."),
                    epochs: Optional[int] = typer.Option(None, min=1, help="Pretraining epochs."),
                    cache_dir: Optional[str] = typer.Option(None, help="Cache root (default $SEAL_CACHE or "
                                                                       "~/.cache/seal).")):
    """Pretrain the tiny ARC model on generated ARC-like tasks (about 16 minutes on 2 CPU cores)."""
    from dataclasses import replace

    from seal.progress import setup_logging
    from seal.world.pretrain import cache_root
    from seal.world.tiny_arc import TinyArcSpec, build_tiny_arc_model

    setup_logging()
    _quiet_libraries()
    spec = replace(TinyArcSpec(), **({"epochs": epochs} if epochs else {}))
    path = build_tiny_arc_model(out or cache_root(cache_dir) / "tiny-arc", spec)
    typer.echo(f"built {path}")


@bench_app.command("inner")
def bench_inner(
    model: str = typer.Option("tiny", help="`tiny`, a local model dir, or preset:qwen2.5-7b / preset:llama-3.2-1b "
                                           "(random weights)."),
    k: str = typer.Option("1,8,32,128", help="Adapters per batch to measure, comma-separated."),
    sequences: int = typer.Option(15, help="Training sequences per self-edit."),
    seq_tokens: int = typer.Option(60, help="Tokens per training sequence."),
    questions: int = typer.Option(5, help="Questions answered per self-edit."),
    answer_tokens: int = typer.Option(64, help="New tokens per answer."),
    epochs: int = typer.Option(10, help="Epochs (the paper: 10)."),
    rank: int = typer.Option(32, help="LoRA rank (the paper: 32)."),
    batch_size: int = typer.Option(1, help="Sequences per optimiser step (the paper: 1)."),
    layers: Optional[int] = typer.Option(None, help="Truncate a preset to this many layers (CPU smoke runs)."),
    sequential_jobs: int = typer.Option(2, help="Self-edits the sequential engine is timed on."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    json_: bool = typer.Option(False, "--json", help="One JSON object per line, one per K."),
):
    """Seconds per self-edit evaluation of the sequential and batched engines, measured side by side."""
    from seal.bench.inner import BenchSize, bench_inner as run_bench

    _quiet_libraries()
    if model == "tiny":
        from seal.world.tiny_knowledge import ensure_tiny_model

        model = str(ensure_tiny_model())
    size = BenchSize(sequences, seq_tokens, questions, answer_tokens, epochs=epochs, rank=rank, alpha=2 * rank,
                     batch_size=batch_size)
    run_bench(model, [int(x) for x in k.split(",")], size, layers=layers, sequential_jobs=sequential_jobs,
              device=device, emit=typer.echo, as_json=json_)


@bench_app.command("arc")
def bench_arc(
    jobs: int = typer.Option(32, min=1, help="TTT jobs (random tool configs on generated tl_table tasks)."),
    k: int = typer.Option(16, min=1, help="Adapters per chunk (the tiny ARC demo's)."),
    seed: int = typer.Option(0, help="Seed of the configs, tasks and adapters."),
):
    """ARC test-time training in the batched engine on a CPU: one padded batch per step against micro-batches
    of similar length, side by side on the same jobs."""
    from seal.bench.arc import bench_arc as run_bench

    _quiet_libraries()
    run_bench(jobs, k, seed, emit=typer.echo)


@data_app.command("squad")
def data_squad(source: str = typer.Argument(..., help="Hub id (rajpurkar/squad), local dir, .json or .parquet."),
               out: Path = typer.Option(..., help="Records file to write (.json)."),
               split: str = typer.Option("validation", help="`datasets` split.")):
    """Convert SQuAD to the records format, one record per unique passage."""
    from seal.data import save_records, squad_to_records

    _quiet_libraries()
    records = squad_to_records(source, split)
    save_records(records, out)
    typer.echo(f"wrote {len(records)} passages, {sum(len(r.questions) for r in records)} questions to {out}")


@bench_app.command("gpu")
def bench_gpu(
    out: Path = typer.Option(Path("bench-gpu.json"), help="The JSON file, rewritten after every stage."),
    rehearse: bool = typer.Option(False, help="Run every stage on CPU at toy sizes (about 2 minutes)."),
    commit: Optional[str] = typer.Option(None, help="The commit measured, when this is not a git checkout."),
    only: Optional[str] = typer.Option(None, help="Run only these stages, comma-separated (e.g. a rerun of "
                                                  "inner:llama-3.2-1b)."),
    budget_s: Optional[float] = typer.Option(None, min=10, help="Seconds for all stages together (default 270; "
                                                                  "rehearsal 600)."),
):
    """Everything a GPU slot can tell us (at most 5 minutes on an H200): the device's matmul ceiling, both
    engines at the paper's inner-loop size on the Qwen2.5-7B and Llama-3.2-1B presets, the chunk-size estimate,
    a kernel profile, the bf16 checks and a knowledge round end to end."""
    from dataclasses import replace

    from seal.bench.core import full_plan, rehearsal_plan
    from seal.bench.gpu import hide_packages, run_bench_gpu, summary_lines

    notes = hide_packages() if rehearse else {}  # the rehearsal runs as on a GPU machine, without trl and co.
    _quiet_transformers()  # not _quiet_libraries: GPU machines have no `datasets`, and nothing here needs it
    plan = rehearsal_plan() if rehearse else full_plan()
    if budget_s:
        plan = replace(plan, budget_s=budget_s)
    typer.echo(f"seal bench gpu{' --rehearse' if rehearse else ''}: stages under a {plan.budget_s:.0f} s budget; "
               f"results in {out}")
    try:
        report = run_bench_gpu(plan, out, commit=commit, only=only.split(",") if only else None, emit=typer.echo,
                               env_notes=notes)
    except (RuntimeError, ValueError) as e:
        _fail(str(e))
    typer.echo("")
    for line in summary_lines(report):
        typer.echo(line)
    typer.echo(f"\nwrote {out} ({report.get('wall_s', 0):.0f} s; commit {report.get('commit')})")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

