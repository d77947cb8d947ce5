"""Inner-loop invariants in bfloat16 on every device present: CPU always, CUDA when there is one.

`pytest -m gpu` selects these. Their bodies live in `seal.bench.checks`, which the `gpu_tests` stage of
`seal bench gpu` runs on GPU machines (they have no pytest); the CPU cases here are what CI runs of them.
"""

import pytest
import torch

from seal.bench.checks import (LOGPROB_TOL, check_base_bit_identical, check_engines_agree, check_export_reload)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                  reason="needs a CUDA device"))]
pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("one_thread")]


@pytest.mark.parametrize("device", DEVICES)
def test_engines_agree_in_bf16(device):
    figures = check_engines_agree(device)  # asserts the tolerances itself
    assert figures["steps"] == 3 * 12 and figures["forced_tokens"] == 3 * 4 * 15
    assert figures["answer_tokens"] > 0 and figures["max_answer_logprob_diff"] <= LOGPROB_TOL


@pytest.mark.parametrize("device", DEVICES)
def test_base_bit_identical_after_inner_loops_in_bf16(device):
    assert check_base_bit_identical(device, rounds=2)["inner_loops"] == 8


@pytest.mark.parametrize("device", DEVICES)
def test_exported_adapter_reloads_in_bf16(device, tmp_path):
    figures = check_export_reload(device, tmp_dir=tmp_path)
    assert figures["adapter_moved_logprobs_by"] > 10 * figures["max_logprob_diff"]
    assert not any(tmp_path.iterdir())  # the adapter was written to a temporary directory, then removed
