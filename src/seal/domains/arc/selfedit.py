"""The ARC self-edit: a JSON tool config (the paper's schema), parsed from model text and bounded.

    {"data_generation": {"use_basic_augmentations": bool, "use_size_augmentations": bool,
                         "use_chain_augmentations": bool, "use_repeat_augmentations": bool},
     "training": {"strategy": "train_using_all_tokens" | "train_using_output_tokens",
                  "learning_rate": float, "num_train_epochs": int}}

Model output is data: the first JSON object in the text is read with size and nesting limits, NaN/Infinity
are refused, and every field is checked (types strict: `"1e-4"` is not a number, `1` is not a boolean). Anything
else is an `Invalid(reason)` (reward 0, reason stored).
"""

from __future__ import annotations

import json
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationError

from seal.domains.base import Invalid

MAX_TEXT = 20_000  # characters of model output scanned for the object
MAX_DEPTH = 8  # nesting levels allowed in the object (the schema needs 2)
MAX_LR = 1e-2
MAX_EPOCHS = 10


class DataGeneration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    use_basic_augmentations: StrictBool = False
    use_size_augmentations: StrictBool = False
    use_chain_augmentations: StrictBool = False
    use_repeat_augmentations: StrictBool = False


class Training(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strategy: Literal["train_using_all_tokens", "train_using_output_tokens"]
    learning_rate: StrictFloat | StrictInt = Field(gt=0, le=MAX_LR)
    num_train_epochs: StrictInt = Field(ge=0, le=MAX_EPOCHS)


class ToolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    data_generation: DataGeneration
    training: Training

    @property
    def groups(self) -> tuple[str, ...]:
        d = self.data_generation
        flags = {"basic": d.use_basic_augmentations, "size": d.use_size_augmentations,
                 "chain": d.use_chain_augmentations, "repeat": d.use_repeat_augmentations}
        return tuple(g for g, on in flags.items() if on)


def _first_object(text: str) -> str | None:
    """The first balanced {...} in `text` (quotes and escapes respected), or None."""
    start = text.find("{")
    while start != -1:
        depth, in_str, esc = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
                continue
            if ch == '"':
                in_str = True
            elif ch in "{[":
                depth += 1
                if depth > MAX_DEPTH:
                    return "DEPTH"
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    return text[start:i + 1]
        start = text.find("{", start + 1)
    return None


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed")


def parse_tool_config(text: str) -> ToolConfig | Invalid:
    """The tool config a model wrote, or `Invalid(reason)`."""
    if not text or not text.strip():
        return Invalid("empty self-edit")
    raw = _first_object(text[:MAX_TEXT])
    if raw is None:
        return Invalid("no JSON object in the self-edit")
    if raw == "DEPTH":
        return Invalid(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as e:
        return Invalid(f"not valid JSON: {str(e)[:120]}")
    try:
        cfg = ToolConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        return Invalid(f"{where}: {err['msg']}"[:200])
    if not math.isfinite(float(cfg.training.learning_rate)):
        return Invalid("training.learning_rate: not finite")
    return cfg
