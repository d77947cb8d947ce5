"""ReST-EM's M-step: supervised finetuning of the policy on (prompt, kept self-edit) pairs with trl, the LoRA
merged into the weights (or full finetuning), saved as a normal HF checkpoint that becomes the next round's
policy and inner-loop base."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import torch

from seal.config import SFTConfig
from seal.faults import crash_point
from seal.files import atomic_dir
from seal.progress import log


def sft_policy(loaded, examples: list[tuple[str, str]], cfg: SFTConfig, out_dir: Path, seed: int) -> Path:
    """Finetune the policy on (prompt, completion) pairs with trl, merge, save to `out_dir` (atomically)."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTConfig as TrlSFTConfig
    from trl import SFTTrainer

    class LogLoss(TrainerCallback):  # the trainer's losses through our logger, not printed dicts
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                log.info("policy SFT step %d/%d: loss %.4f", state.global_step, state.max_steps, float(logs["loss"]))

    model, tok = loaded.model, loaded.tokenizer
    cuda = loaded.device.type == "cuda"
    scratch = out_dir.with_name(out_dir.name + ".trainer")  # the trainer's own files; nothing is kept there
    args = TrlSFTConfig(
        output_dir=str(scratch), learning_rate=cfg.lr, num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_length, weight_decay=cfg.weight_decay, lr_scheduler_type="linear", warmup_steps=0,
        logging_steps=10, save_strategy="no", report_to=[], seed=seed, data_seed=seed, bf16=cuda and
        model.dtype == torch.bfloat16, use_cpu=not cuda, completion_only_loss=True, disable_tqdm=True,
        dataloader_num_workers=0, dataset_num_proc=None,
    )
    peft_cfg = None
    if cfg.mode == "lora":
        targets = [t for t in cfg.target_modules or [] if any(n.endswith("." + t) for n, _ in model.named_modules())]
        peft_cfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, task_type="CAUSAL_LM",
                              target_modules=targets or None)
    else:
        model.requires_grad_(True)
    data = Dataset.from_list([{"prompt": p, "completion": c} for p, c in examples])
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok, peft_config=peft_cfg)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(LogLoss())
    trainer.train()
    crash_point("sft")
    trained = trainer.model
    merged = trained.merge_and_unload() if cfg.mode == "lora" else trained
    merged.requires_grad_(False)
    merged.eval()
    with atomic_dir(out_dir) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    shutil.rmtree(scratch, ignore_errors=True)
    del trainer, trained
    gc.collect()
    return out_dir

