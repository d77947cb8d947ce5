import pytest

from seal.config import GenerationConfig, InnerConfig, SequencesConfig
from seal.domains.base import QA, Context, Invalid, SelfEdit
from seal.domains.knowledge import ANSWER_PROMPT, SELF_EDIT_PROMPTS, KnowledgeDomain, split_self_edit
from seal.grading import ExactGrader

CTX = Context("c", "Ada Lowell", "Ada Lowell was born in Calder in 1907.", (QA("Where was Ada Lowell born?", "Calder"),))


def domain(loaded, gen=None, seq=None, inner=None):
    return KnowledgeDomain(loaded.tokenizer, ExactGrader(), gen or GenerationConfig(), seq or SequencesConfig(),
                           inner or InnerConfig())


def test_paper_prompts_verbatim():
    p = SELF_EDIT_PROMPTS["implications"].format(title="T", context="C")
    assert p == ("Let's read the following passage and produce a list of implications derived directly or "
                 "indirectly from the content.\n\nPassage:\nT\nC\n\nImplications:\n")
    assert SELF_EDIT_PROMPTS["self_qa"].endswith("Question 1: ")
    assert SELF_EDIT_PROMPTS["rewrite"].endswith("Rewritten passages:\n")
    assert "long list" in SELF_EDIT_PROMPTS["implications_long"]
    assert "very long list" in SELF_EDIT_PROMPTS["implications_very_long"]
    assert ANSWER_PROMPT.format(title="T", question="Q?") == (
        "Let's answer a question directly and concisely.\nQuestion: Topic: T\nQ?\nAnswer:\n")


@pytest.mark.parametrize("completion, expected", [
    ("a\nb\n\n c \n", ["a", "b", "c"]),
    ("a\n---\nb", ["a", "b"]),
    ("Here are some implications:\n1. x\n2. y", ["1. x", "2. y"]),
    ("1. x\n2. y", ["1. x", "2. y"]),
    ("Intro line\nnot numbered", ["Intro line", "not numbered"]),
    ("   \n\n", []),
])
def test_split_lines(completion, expected):
    assert split_self_edit(completion, "implications", SequencesConfig()) == expected


def test_split_switches():
    assert split_self_edit("a\nb\n---\nc", "implications", SequencesConfig(split_lines=False)) == ["a\nb", "c"]
    assert split_self_edit("a---b", "implications", SequencesConfig(split_separator=None)) == ["a---b"]
    assert split_self_edit("Intro\n1. x", "implications", SequencesConfig(drop_preamble=False)) == ["Intro", "1. x"]


def test_split_self_qa():
    comp = "Where was Ada born?\nAnswer: Calder\nQuestion 2: When?\nAnswer: 1907"
    assert split_self_edit(comp, "self_qa", SequencesConfig()) == [
        "Question 1: Where was Ada born?\nAnswer: Calder", "Question 2: When?\nAnswer: 1907"]


def test_plan_sequences_title_prefix_and_passage_last(loaded_random):
    d = domain(loaded_random)
    texts = d.texts(CTX, SelfEdit("c", "p", "Ada was born in 1907.\nAda is from Vetland.", "base"))
    assert texts == ["Ada Lowell\nAda was born in 1907.", "Ada Lowell\nAda is from Vetland.",
                     "Ada Lowell\nAda Lowell was born in Calder in 1907."]
    d2 = domain(loaded_random, seq=SequencesConfig(title_prefix=False, append_passage=False))
    assert d2.texts(CTX, SelfEdit("c", "p", "x", "base")) == ["x"]
    plan = d.plan(CTX, SelfEdit("c", "p", "Ada was born in 1907.", "base"))
    tok = loaded_random.tokenizer
    assert [tok.decode(s.input_ids) for s in plan.sequences] == [
        "Ada Lowell\nAda was born in 1907.", "Ada Lowell\nAda Lowell was born in Calder in 1907."]
    assert plan.lora.r == 32 and plan.optim.lr == 1e-3 and plan.n_steps == 2 * 10


def test_passage_only_and_repeated(loaded_random):
    d = domain(loaded_random)
    assert len(d.plan(CTX, None).sequences) == 1
    assert len(d.plan(CTX, None, repeat_passage=4).sequences) == 4


def test_loss_mask_substring(loaded_random):
    d = domain(loaded_random, seq=SequencesConfig(loss_mask_substring="born in"))
    seq = d.encode("Ada Lowell was born in Calder")
    tok = loaded_random.tokenizer
    trained = [t for t, m in zip(seq.input_ids, seq.loss_mask) if m]
    assert tok.decode(trained).strip() == "Calder"
    assert all(d.encode("no marker here").loss_mask)


def test_max_length_truncates(loaded_random):
    d = domain(loaded_random, inner=InnerConfig(max_length=8))
    assert len(d.encode("word " * 100).input_ids) == 8


@pytest.mark.parametrize("completion", ["", "   \n\t"])
def test_empty_self_edit_is_invalid(loaded_random, completion):
    assert isinstance(domain(loaded_random).plan(CTX, SelfEdit("c", "p", completion, "base")), Invalid)


def test_chat_prompt_uses_template(loaded_random):
    d = domain(loaded_random, gen=GenerationConfig(chat=True))
    p = d.prompt(CTX)
    assert p.startswith("<|im_start|>system\n") and p.endswith("<|im_start|>assistant\n")
    assert "Ada Lowell\nAda Lowell was born" in p
    assert d.probes(CTX)[0].prompt.startswith("<|im_start|>user\nLet's answer a question")


def test_score_grades_and_failures(loaded_random):
    from seal.domains.base import InnerResult

    d = domain(loaded_random)
    s = d.score(CTX, InnerResult(["In Calder."]))
    assert s.correct == [True] and s.accuracy == 1.0
    f = d.score(CTX, InnerResult([], failed="non-finite loss at step 3"))
    assert f.accuracy == 0.0 and f.failed


def test_score_grades_against_every_gold_and_carries_f1():
    from seal.domains.base import InnerResult
    from seal.grading import F1Grader, StrictGrader

    ctx = Context("c", "Gateway Arch", "The Gateway Arch is in St. Louis.",
                  (QA("Where is it?", "St. Louis", ("Saint Louis", "St. Louis")), QA("Built when?", "1965")))
    assert ctx.questions[0].answers == ("St. Louis", "Saint Louis") and ctx.questions[1].answers == ("1965",)

    def score(grader, answers, failed=None):
        d = KnowledgeDomain(None, grader, GenerationConfig(), SequencesConfig(), InnerConfig())
        return d.score(ctx, InnerResult(answers, failed=failed))

    s = score(StrictGrader(), [" saint Louis. It is in Missouri.", "In 1965."])
    assert s.correct == [True, False] and s.f1 is None and s.mean_f1 is None
    s = score(F1Grader(), ["Saint Louis, Missouri", "In 1965."])
    # vs "Saint Louis": P 2/3, R 2/2 -> 0.8; "In 1965" vs "1965": P 1/2, R 1 -> 2/3
    assert s.correct == [True, True] and s.f1 == pytest.approx([0.8, 2 / 3]) and s.mean_f1 == pytest.approx(11 / 15)
    s = score(F1Grader(), [], failed="non-finite loss")
    assert s.f1 == [0.0, 0.0] and s.mean_f1 == 0.0 and s.accuracy == 0.0
