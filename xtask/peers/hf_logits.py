"""Cross-check against Hugging Face transformers on the same weights and tokens.

Usage: python3 hf_logits.py MODEL_DIR DUMP.safetensors [THRESHOLD]

MODEL_DIR is what `host export` wrote; DUMP is what `host generate --model MODEL_DIR
--dump-logits DUMP` wrote (logits (steps, batch, vocab), input_ids (steps)). Runs
GPT2LMHeadModel in float32 over the same input ids (a full causal forward, teacher-forced
by construction) and prints, per step, the relative L2 error of our sequence-0 logits
against its logits. Exits 1 if any step is above THRESHOLD (default 1e-2).
"""

import sys

import torch
from safetensors.torch import load_file
from transformers import GPT2LMHeadModel


def main() -> int:
    model_dir, dump_path = sys.argv[1], sys.argv[2]
    threshold = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-2
    dump = load_file(dump_path)
    ours = dump["logits"][:, 0, :].double()
    ids = dump["input_ids"].to(torch.int64)
    model = GPT2LMHeadModel.from_pretrained(model_dir, torch_dtype=torch.float32)
    model = model.cuda().eval()
    with torch.no_grad():
        theirs = model(ids[None].cuda()).logits[0].double().cpu()
    errors = (theirs - ours).norm(dim=-1) / theirs.norm(dim=-1)
    same_top = (theirs.argmax(-1) == ours.argmax(-1)).sum().item()
    print("step | relative L2 error vs transformers")
    for step, error in enumerate(errors.tolist()):
        print(f"{step:4d} | {error:.3e}")
    worst = errors.max().item()
    print(
        f"largest {worst:.3e} over {len(errors)} steps (threshold {threshold:.0e}); "
        f"argmax equal at {same_top}/{len(errors)} steps"
    )
    return 0 if worst <= threshold else 1


if __name__ == "__main__":
    sys.exit(main())
