"""Where contexts and teacher self-edits come from: records files, SQuAD via `datasets`, the built-in world,
and an OpenAI-compatible endpoint for teacher completions."""

from __future__ import annotations

import os
import time

from seal.config import RunConfig, SourceConfig
from seal.data import DataError, load_records, paper_eval_split, squad_to_records
from seal.domains.base import Context, SelfEdit
from seal.progress import log, progress


def read_source(src: SourceConfig, cfg: RunConfig, questions_required: bool = True) -> list[Context]:
    """The contexts of a data source. `questions_required=False`: records may have no questions (nothing in the
    run needs their gold answers, e.g. label-free SEAL)."""
    if src.kind == "records":
        return load_records(src.path, cfg.data.max_records, questions_required=questions_required)
    if src.kind == "squad":
        records = squad_to_records(src.path, src.split or "validation")
        return records[: cfg.data.max_records] if cfg.data.max_records else records
    if src.kind == "arc":
        from seal.domains.arc.domain import task_context
        from seal.domains.arc.grids import load_arc

        tasks = load_arc(src.path, src.solutions)
        if src.task_ids is not None:
            wanted = set(src.task_ids)
            tasks = [t for t in tasks if t.id.split("/")[0] in wanted]
            found = {t.id.split("/")[0] for t in tasks}
            if wanted - found:
                raise DataError(f"{src.path}: task ids not found: {', '.join(sorted(wanted - found)[:5])}")
        return [task_context(t) for t in tasks]
    if src.kind == "arc_world":
        from seal.domains.arc.domain import task_context
        from seal.world.arc_tasks import world_tasks

        families = tuple(cfg.arc.families) if cfg.arc.families else None
        split = src.split or "eval"
        n = cfg.arc.train_per_family if split == "train" and cfg.arc.train_per_family else cfg.arc.per_family
        return [task_context(t) for t in world_tasks(split, n, families)]
    from seal.world.generator import default_world

    return list(default_world().split(src.split or "eval", src.wording))


def eval_contexts(cfg: RunConfig, pool: list[Context], n: int) -> list[Context]:
    """The first `n` of `pool` shuffled as `data.eval_selection` says: the paper's seed 42, or the run seed."""
    return paper_eval_split(pool, n, seed=42 if cfg.data.eval_selection == "paper" else cfg.seed)


def teacher_self_edits(run, ctxs: list[Context]) -> dict[str, list[SelfEdit]]:
    """Teacher self-edits per eval passage: the `completions` of a records file, or written by an endpoint
    (stored like any self-edit, so a resumed run does not ask again)."""
    t = run.cfg.data.teacher
    if t.path:
        by_id = {c.id: c for c in load_records(t.path)}
        out, missing = {}, 0
        for c in ctxs:
            comps = by_id[c.id].completions[: t.samples] if c.id in by_id else ()
            missing += not comps
            out[c.id] = [SelfEdit(c.id, run.domain.prompt(c), text, "teacher", s) for s, text in enumerate(comps)]
        if missing:
            log.warning("%s: no teacher completions for %d of %d eval passages; they are left out of the row",
                        t.path, missing, len(ctxs))
        return out
    have = run.store.self_edits("eval/teacher", 0)
    todo = [(c, s) for c in ctxs for s in range(t.samples) if (c.id, s) not in have]
    with progress("teacher self-edits", len(todo)) as advance:
        for c, s in todo:
            prompt = run.domain.prompt(c)
            edit = SelfEdit(c.id, prompt, endpoint_completion(run.cfg, prompt), "teacher", s)
            run.store.put_self_edits("eval/teacher", 0, [edit])
            have[(c.id, s)] = edit
            advance()
    return {c.id: [have[(c.id, s)] for s in range(t.samples)] for c in ctxs}


def endpoint_completion(cfg: RunConfig, prompt: str, retries: int = 5) -> str:
    """One completion of `prompt` from the teacher endpoint (OpenAI-compatible chat API)."""
    import httpx

    t = cfg.data.teacher
    key = os.environ.get(t.api_key_env)
    if not key:
        raise DataError(f"data.teacher.base_url is set but the environment variable {t.api_key_env} is not")
    body = {"model": t.model, "messages": [{"role": "user", "content": prompt}],
            "temperature": cfg.generation.temperature, "top_p": cfg.generation.top_p,
            "max_tokens": cfg.generation.max_new_tokens}
    delay = 1.0
    for attempt in range(retries + 1):
        try:
            resp = httpx.post(t.base_url.rstrip("/") + "/chat/completions", json=body, timeout=120,
                              headers={"Authorization": f"Bearer {key}"})
            if resp.status_code == 200:
                return resp.json()["choices"][0]["message"]["content"] or ""
            if resp.status_code < 500 and resp.status_code != 429:
                raise DataError(f"teacher endpoint answered HTTP {resp.status_code}")
        except (httpx.HTTPError, ValueError, KeyError, IndexError) as e:
            log.debug("teacher retry after %s", type(e).__name__)
        if attempt < retries:
            time.sleep(delay)
            delay *= 2
    raise DataError(f"teacher endpoint {t.base_url} failed after {retries + 1} attempts")
