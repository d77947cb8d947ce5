"""Knowledge incorporation (the paper's SQuAD domain).

The policy reads a passage and writes implications; the inner loop trains a LoRA adapter on them (plus the
passage) and the adapted model answers the passage's questions closed-book. Reward = accuracy.
"""

from __future__ import annotations

import re

from seal.config import GenerationConfig, InnerConfig, SequencesConfig
from seal.domains.base import Context, InnerResult, Invalid, Probe, Score, SelfEdit, TrainSequence, UpdatePlan
from seal.generate import encode_prompt
from seal.grading import F1Grader, Grader, GradeItem

# Self-edit prompts of the paper (Zweiger et al. 2025, §knowledge incorporation and the prompt ablation),
# kept verbatim so results are comparable.
_READ = "Let's read the following passage and "
_PASSAGE = "\n\nPassage:\n{title}\n{context}\n\n"
SELF_EDIT_PROMPTS = {
    "implications": _READ + "produce a list of implications derived directly or indirectly from the content."
    + _PASSAGE + "Implications:\n",
    "implications_long": _READ + "produce a long list of implications derived directly or indirectly from the "
    "content." + _PASSAGE + "Implications:\n",
    "implications_very_long": _READ + "produce a very long list of implications derived directly or indirectly "
    "from the content." + _PASSAGE + "Implications:\n",
    "rewrite": _READ + "rewrite it in a few different ways, each one separated by a newline." + _PASSAGE
    + "Rewritten passages:\n",
    "self_qa": _READ + "rewrite it in a question-answer format." + _PASSAGE + "Question 1: ",
}
# Instruct models: a system message asking for implications, the passage as the user turn (paper, §4.1).
CHAT_SYSTEM = ("You are an assistant that reads a passage and produces a list of implications derived directly or "
               "indirectly from its content, one per line.")
CHAT_USER = "{title}\n{context}"

# The paper's closed-book answer prompt.
ANSWER_PROMPT = "Let's answer a question directly and concisely.\nQuestion: Topic: {title}\n{question}\nAnswer:\n"
# The same without the topic line: a user's question (`seal ask`, `seal learn`'s report) comes with no passage title.
ASK_PROMPT = "Let's answer a question directly and concisely.\nQuestion: {question}\nAnswer:\n"

_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # control characters but tab and newlines
_SELF_QA_SPLIT = re.compile(r"(?=\bQuestion \d+:)")


def render_chat(tokenizer, system: str | None, user: str) -> str:
    """A user turn (and optional system message) through the tokenizer's own chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("generation.chat is on but the tokenizer has no chat template")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def split_self_edit(completion: str, style: str, cfg: SequencesConfig) -> list[str]:
    """The texts a self-edit contributes, split as the paper does (each behaviour a config switch). Control
    characters a model may emit are dropped first."""
    completion = _CONTROL.sub("", completion)
    if style == "self_qa" and cfg.split_self_qa:
        text = "Question 1: " + completion  # the prompt ends with 'Question 1: '
        return [p.strip() for p in _SELF_QA_SPLIT.split(text) if p.strip()][: cfg.max_sequences]
    parts = completion.split(cfg.split_separator) if cfg.split_separator else [completion]
    texts: list[str] = []
    for part in parts:
        if not cfg.split_lines:
            if part.strip():
                texts.append(part.strip())
            continue
        lines = [ln.strip() for ln in part.splitlines() if ln.strip()]
        if cfg.drop_preamble and len(lines) > 1 and _NUMBERED.match(lines[1]) and not _NUMBERED.match(lines[0]):
            lines = lines[1:]
        texts.extend(lines)
    return texts[: cfg.max_sequences]


class KnowledgeDomain:
    """Domain protocol for passages + closed-book questions."""

    def __init__(self, tokenizer, grader: Grader, generation: GenerationConfig, sequences: SequencesConfig,
                 inner: InnerConfig, answer_prompt: str = ANSWER_PROMPT):
        self.tok = tokenizer
        self.grader = grader
        self.gen = generation
        self.seq = sequences
        self.inner = inner
        self.answer_prompt = answer_prompt  # ANSWER_PROMPT (the paper's, with the title) or ASK_PROMPT
        self.lora = inner.lora_spec()
        self.optim = inner.optim_spec()

    @classmethod
    def from_config(cls, tokenizer, cfg, answer_prompt: str = ANSWER_PROMPT) -> "KnowledgeDomain":
        """The domain a run config describes (its grader, generation, sequence and inner-loop sections)."""
        from seal.grading import make_grader

        return cls(tokenizer, make_grader(cfg.grader), cfg.generation, cfg.sequences, cfg.inner, answer_prompt)

    # --- prompts ---

    def prompt(self, context: Context) -> str:
        if self.gen.chat:
            return render_chat(self.tok, CHAT_SYSTEM, CHAT_USER.format(title=context.title, context=context.text))
        return SELF_EDIT_PROMPTS[self.gen.prompt_style].format(title=context.title, context=context.text)

    def probes(self, context: Context) -> tuple[Probe, ...]:
        out = []
        for qa in context.questions:
            text = self.answer_prompt.format(title=context.title, question=qa.question)
            if self.gen.chat:
                text = render_chat(self.tok, None, text)
            out.append(Probe(text, self.inner.answer_max_new_tokens))
        return tuple(out)

    # --- plans ---

    def pieces(self, context: Context, self_edit: SelfEdit) -> list[str]:
        """The training texts one self-edit contributes (without the passage)."""
        pieces = split_self_edit(self_edit.completion, self.gen.prompt_style, self.seq)
        return [f"{context.title}\n{p}" for p in pieces] if self.seq.title_prefix else pieces

    def texts(self, context: Context, self_edit: SelfEdit | None, repeat_passage: int = 1) -> list[str]:
        """Training texts: the self-edit's pieces, then the passage (appended last, as in the paper)."""
        pieces = self.pieces(context, self_edit) if self_edit else []
        if self.seq.append_passage or self_edit is None:
            pieces += [f"{context.title}\n{context.text}"] * repeat_passage
        return pieces

    def corpus_sequences(self, context: Context, self_edits: list[SelfEdit]) -> list[TrainSequence]:
        """One passage's share of a pooled corpus (continued pretraining): the pieces of all its self-edits,
        then the passage once."""
        texts = [t for e in self_edits for t in self.pieces(context, e)]
        if self.seq.append_passage or not texts:
            texts.append(f"{context.title}\n{context.text}")
        return [s for s in (self.encode(t) for t in texts) if s.n_loss_tokens > 1]

    def encode(self, text: str) -> TrainSequence:
        ids = encode_prompt(self.tok, text)[: self.inner.max_length]
        mask = [1] * len(ids)
        if self.seq.loss_mask_substring and self.seq.loss_mask_substring in text:
            cut = text.index(self.seq.loss_mask_substring) + len(self.seq.loss_mask_substring)
            n_prefix = len(encode_prompt(self.tok, text[:cut]))
            mask = [0] * min(n_prefix, len(ids)) + [1] * max(0, len(ids) - n_prefix)
        return TrainSequence(tuple(ids), tuple(mask))

    def plan(self, context: Context, self_edit: SelfEdit | None, repeat_passage: int = 1) -> UpdatePlan | Invalid:
        if self_edit is not None and not self_edit.completion.strip():
            return Invalid("empty self-edit")
        texts = self.texts(context, self_edit, repeat_passage)
        if self_edit is not None and len(texts) == int(self.seq.append_passage) * repeat_passage:
            return Invalid("self-edit has no usable lines")
        seqs = tuple(s for s in (self.encode(t) for t in texts) if s.n_loss_tokens > 1)
        if not seqs:
            return Invalid("no trainable tokens")
        return UpdatePlan(seqs, self.lora, self.optim)

    # --- scoring ---

    def score(self, context: Context, result: InnerResult) -> Score:
        """Grade each answer against every gold answer of its question; under the `f1` grader the per-question
        token F1s ride along in `Score.f1`."""
        with_f1 = isinstance(self.grader, F1Grader)
        if result.failed:
            n = len(context.questions)
            return Score(correct=[False] * n, answers=result.answers, failed=result.failed,
                         train_seconds=result.train_seconds, f1=[0.0] * n if with_f1 else None)
        items = [GradeItem(q.question, q.answers, a.strip()) for q, a in zip(context.questions, result.answers)]
        f1 = self.grader.f1_scores(items) if isinstance(self.grader, F1Grader) else None
        return Score(correct=self.grader.grade(items), answers=[it.answer for it in items],
                     train_seconds=result.train_seconds, eval_seconds=result.eval_seconds,
                     n_steps=len(result.step_losses), f1=f1)
