"""Cross-check against Hugging Face transformers on the same weights and tokens.

Usage: python3 hf_logits.py MODEL_DIR DUMP.safetensors [THRESHOLD]

MODEL_DIR is what `host export` wrote; DUMP is what `host generate --model MODEL_DIR
--dump-logits DUMP` wrote (logits (steps, batch, vocab), input_ids (steps)). Runs the
directory's model (AutoModelForCausalLM: GPT-2, Llama, Qwen2) in float32 over the same
input ids (a full causal forward, teacher-forced by construction) and prints, per step, the
relative L2 error of our sequence-0 logits against its logits. For a model stored in a
half type it also runs transformers in that type, and requires our largest error to be no
larger than transformers' own half-precision run's against its float32 run, and our greedy
token to agree with float32's wherever its top-2 margin is wider than that error (relative
to the logits' norm). Exits 1 if a check fails or a step is above THRESHOLD (default 1e-2
for fp16 models; none for bf16 ones, whose bound is transformers' own bf16 error).
"""

import json
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def logits(model_dir, dtype, ids):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model = model.cuda().eval()
    with torch.no_grad():
        out = model(ids[None].cuda()).logits[0].double().cpu()
    del model
    torch.cuda.empty_cache()
    return out


def relative(a, b):
    return (a - b).norm(dim=-1) / b.norm(dim=-1)


def main() -> int:
    model_dir, dump_path = sys.argv[1], sys.argv[2]
    dump = load_file(dump_path)
    ours = dump["logits"][:, 0, :].double()
    ids = dump["input_ids"].to(torch.int64)
    with open(f"{model_dir}/config.json") as f:
        stored = json.load(f).get("torch_dtype", "float32")
    threshold = float(sys.argv[3]) if len(sys.argv) > 3 else (
        float("inf") if stored == "bfloat16" else 1e-2
    )
    full = logits(model_dir, torch.float32, ids)
    errors = relative(ours, full)
    same_top = (full.argmax(-1) == ours.argmax(-1)).sum().item()
    half_errors = None
    if stored in ("bfloat16", "float16"):
        half_errors = relative(logits(model_dir, getattr(torch, stored), ids), full)
    print(f"step | ours vs transformers float32 | transformers {stored} vs float32")
    for step, error in enumerate(errors.tolist()):
        theirs = f"{half_errors[step].item():.3e}" if half_errors is not None else "-"
        print(f"{step:4d} | {error:28.3e} | {theirs}")
    worst = errors.max().item()
    print(
        f"largest {worst:.3e} over {len(errors)} steps (threshold {threshold:.0e}); "
        f"argmax equal at {same_top}/{len(errors)} steps"
    )
    ok = worst <= threshold
    if half_errors is not None:
        bound = half_errors.max().item()
        top2 = full.topk(2, dim=-1).values
        margin = (top2[:, 0] - top2[:, 1]) / full.norm(dim=-1)
        decided = margin > bound
        agree = (full.argmax(-1) == ours.argmax(-1))[decided]
        print(
            f"transformers {stored} vs float32: largest {bound:.3e}; ours "
            f"{'within' if worst <= bound else 'ABOVE'} it; greedy tokens agree at "
            f"{agree.sum().item()}/{decided.sum().item()} steps whose top-2 margin exceeds it"
        )
        ok = ok and worst <= bound and bool(agree.all())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
