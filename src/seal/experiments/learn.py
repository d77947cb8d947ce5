"""`seal learn`: documents in, a model that knows them out.

    seal learn notes/ manual.pdf --model Qwen/Qwen2.5-7B --out learned/     # one LoRA: learned/adapter/
    seal learn wiki/ --model tiny --out learned/ --mode library              # one adapter per document
    seal ask learned/ "Where was Milo Halden born?"

Documents are split into passages on the model's tokenizer; the model (fixed: the question writer) writes
questions about each passage, split into a `select` part and a held-out `report` part; the model (or a SEAL
`learn.policy`, or a teacher endpoint) writes K self-edits per passage, and the best of them by its reward on the
select questions is kept (label-free SEAL; `learn.select: all` keeps every one); one update learns every
passage with its self-edits: `merged` (one LoRA or full finetuning, as continued pretraining) or `library` (one
adapter per document and a router, as continual's library mode). Closed-book accuracy on the held-out questions,
and on `--gold` and `--control` records, is measured before and after. Every step is stored: a rerun resumes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from seal.ask import Learned
from seal.config import ConfigError, RunConfig
from seal.data import load_records
from seal.domains.base import Context, SelfEdit
from seal.domains.knowledge import ASK_PROMPT, KnowledgeDomain
from seal.files import write_json, write_jsonl
from seal.ingest import collect_paths, compare_fingerprints, fingerprint, read_documents, split_passages
from seal.inner.library import Router
from seal.inner.update import finetune, train_adapters
from seal.labels import joined, question_sets
from seal.model import LoadedModel
from seal.outer.selection import rewards_by_self_edit
from seal.progress import log
from seal.results import Summary
from seal.run import Item, Run
from seal.sources import teacher_self_edits
from seal.store import derive_seed


def main(cfg: RunConfig, out_dir: str | Path) -> Summary:
    L = cfg.learn
    ingest = read_documents(collect_paths(L.documents))  # nothing readable: an error before any model loads
    gold, control = ([] if p is None else load_records(p) for p in (L.gold, L.control))
    with Run.open(cfg, out_dir, local=True, contexts=gold + control) as run:
        check_documents(run, ingest.documents)
        t0 = time.perf_counter()
        base = run.load()
        run.domain = KnowledgeDomain.from_config(base.tokenizer, cfg, answer_prompt=ASK_PROMPT)
        passages = split_passages(ingest.documents, base.tokenizer, L.passage_tokens, L.overlap_sentences)
        ctxs = [p.to_context() for p in passages]
        write_jsonl(run.dir / "passages.jsonl", [{"id": p.id, "document": p.document, "title": p.title,
                                                  "text": p.text} for p in passages])
        log.info("learn: %d documents (%d skipped), %d passages, mode %s", len(ingest.documents),
                 len(ingest.skipped), len(passages), L.mode)

        # --- questions (label-free) and self-edits ---
        run.questions.update(question_sets(run.store, cfg, ctxs))
        chosen = choose(run, base, ctxs, self_edits(run, base, ctxs))

        # --- before, the update, after ---
        held_out = [joined(c, run.questions[c.id].report, ()) for c in ctxs if run.questions[c.id].report]
        groups = {k: cs for k, cs in {"generated": held_out, "gold": gold, "control": control}.items() if cs}
        rows = [run.row(f"{k}_before", run.closed_book(f"learn/{k}/before", 0, base, cs), cs)
                for k, cs in groups.items()]
        learned, outputs, update = learn(run, base, passages, chosen)
        for k, cs in groups.items():
            rows.append(run.row(f"{k}_after", answer(run, learned, f"learn/{k}/after", cs), cs))

        # --- outputs ---
        write_questions(run, groups.get("generated", []))
        acc = {k: None for k in ("generated", "gold", "control")} | {
            k: {"before": run_row(rows, f"{k}_before").accuracy, "after": run_row(rows, f"{k}_after").accuracy,
                "n": run_row(rows, f"{k}_after").n_questions} for k in groups}
        record = {"model": base.path, "inputs": L.documents, "mode": L.mode, "update": L.update.mode,
                  "skipped": [{"path": str(s.path), "reason": s.reason} for s in ingest.skipped],
                  "documents": len(ingest.documents), "passages": len(passages), **update,
                  "seconds": time.perf_counter() - t0, "update_seconds": update["seconds"], "accuracy": acc,
                  "outputs": outputs}
        write_json(run.dir / "learn.json", record)
        return run.finish(Summary("learn", cfg.name, rows, title="closed-book questions, before and after learning",
                                  data={"learn": record},
                                  comparisons=run.compare(rows, [(f"{k}_after", f"{k}_before") for k in groups])))


def check_documents(run: Run, documents) -> None:
    """Record the documents' content hashes, or refuse a resume over other documents (naming them)."""
    now = fingerprint(documents)
    before = run.store.get_meta("documents")
    if before is None:
        run.store.set_meta("documents", json.dumps(now))
        return
    diff = compare_fingerprints(json.loads(before), now)
    if not diff.same:
        raise ConfigError(f"{run.dir} learned other documents ({diff.describe()}); rerun with the same documents "
                          f"or choose another --out")


def self_edits(run: Run, base, ctxs: list[Context]) -> dict[str, list[SelfEdit]]:
    """K self-edits per passage, from `learn.policy`, a teacher endpoint, or the model itself (stored)."""
    L = run.cfg.learn
    if run.cfg.data.teacher.enabled and not L.policy:
        return teacher_self_edits(run, ctxs)
    writer = run.load(L.policy) if L.policy else base
    got = run.sample("learn/self-edits", 0, writer, ctxs, L.samples, who="policy" if L.policy else "model")
    if writer is not base:
        run.free(writer)
    return {c.id: [got[(c.id, s)] for s in range(L.samples)] for c in ctxs}


def choose(run: Run, base, ctxs: list[Context], edits: dict[str, list[SelfEdit]]) -> dict[str, list[SelfEdit]]:
    """Per passage the self-edit with the highest reward on its `select` questions (ties: the lower sample;
    a passage with none keeps its first), or every self-edit with `learn.select: all`."""
    if run.cfg.learn.select == "all":
        return edits
    scorable = [c for c in ctxs if run.questions[c.id].select]
    items = [Item(joined(c, run.questions[c.id].select, ()), e, e.sample) for c in scorable for e in edits[c.id]]
    rewards = rewards_by_self_edit(run.score("learn/select", 0, base, items))
    return {c.id: [max(edits[c.id], key=lambda e: (rewards.get((c.id, e.sample), -1.0), -e.sample))]
            for c in ctxs}


def learn(run: Run, base, passages, chosen) -> tuple[Learned, dict, dict]:
    """The update: the answering model, the output paths (learn.json's `outputs`) and its figures (sequences,
    tokens, optimiser steps, seconds). What is on disk already is reused on a rerun."""
    L, spec, out = run.cfg.learn, run.cfg.learn.update.update_spec(), run.dir

    def sequences(ps) -> list:
        return [s for p in ps for s in run.domain.corpus_sequences(p.to_context(), chosen[p.id])]

    def record(key: str, r, n_sequences: int) -> None:  # an update's figures, stored once it is on disk
        run.store.set_meta(f"learn/update/{key}", json.dumps({"sequences": n_sequences, "tokens": r.n_tokens,
                                                               "steps": len(r.step_losses), "seconds": r.seconds}))

    if L.mode == "library":
        docs = list(dict.fromkeys(p.document for p in passages))
        names = [f"doc-{i:04d}" for i in range(len(docs))]
        todo = [(d, n) for d, n in zip(docs, names) if not (out / "adapters" / n).exists()]
        work = [(sequences([p for p in passages if p.document == d]), derive_seed(run.cfg.seed, "learn", n),
                 out / "adapters" / n) for d, n in todo]
        trained = train_adapters(base, work, spec, run.cfg.inner.max_adapters_per_batch or 32, "learn: adapters")
        for (_, name), (seqs, _, _), r in zip(todo, work, trained):
            record(name, r, len(seqs))
        texts = ["\n".join(f"{p.title}\n{p.text}" for p in passages if p.document == d) for d in docs]
        router = Router.build(L.router, names, texts, base)
        write_json(out / "router.json", {**router.to_json(), "documents": docs, "prompt": ASK_PROMPT})
        outputs = {"adapters": "adapters", "router": "router.json"}
        learned = Learned(base, router, [out / "adapters" / n for n in names])
    else:
        outputs = {"adapter": "adapter"} if spec.mode == "lora" else {"merged": "merged"}
        if (out / next(iter(outputs.values()))).exists():
            learned = Learned.from_outputs(base, out, outputs)
        else:
            seqs = sequences(passages)
            record("merged", finetune(base, seqs, spec, run.cfg.seed, description="learn: update",
                                      save_adapter=out / "adapter" if spec.mode == "lora" else None), len(seqs))
            learned = Learned(base)
        if spec.mode == "full" or L.save_merged:
            if not (out / "merged").exists():
                run.backend.save_copy(learned.loaded, out / "merged")
            outputs["merged"] = "merged"
    figures = [json.loads(v) for k, v in run.store.meta_items("learn/update/")]
    return learned, outputs, {k: sum(f[k] for f in figures) for k in ("sequences", "tokens", "steps", "seconds")}


def answer(run: Run, learned: Learned, phase: str, ctxs: list[Context]):
    """Closed-book scores of the learned model (a library routes each question as `seal ask` does)."""
    if learned.router is None:
        return run.closed_book(phase, 0, learned.loaded, ctxs)
    questions = [q.question for c in ctxs for q in c.questions]
    choice = [f"a{a}" for a in learned.router.route(questions, learned.loaded)]
    with learned.library() as model:
        view = LoadedModel(model, learned.loaded.tokenizer, learned.loaded.path)
        return run.closed_book(phase, 0, view, ctxs, route=choice, activate=model.set_adapter)


def write_questions(run: Run, ctxs: list[Context]) -> None:
    """questions.jsonl: every held-out generated question with the answers before and after learning."""
    before, after = (run.store.scores(f"learn/generated/{w}", 0) for w in ("before", "after"))
    by_id = lambda scores: {k.context_id: s for k, s in scores.items()}  # noqa: E731
    b, a = by_id(before), by_id(after)
    write_jsonl(run.dir / "questions.jsonl", [
        {"passage": c.id, "title": c.title, "question": q.question, "answer": q.answer,
         "before": b[c.id].answers[i], "after": a[c.id].answers[i], "correct_before": b[c.id].correct[i],
         "correct_after": a[c.id].correct[i]} for c in ctxs for i, q in enumerate(c.questions)])


def run_row(rows, name: str):
    return next(r for r in rows if r.name == name)
