"""PyTorch peers of the decode benchmark, on the weights `host export` wrote.

Usage: python3 torch_decode.py MODEL_DIR --batch B --context C [--steps N] [--json FILE]

Three peers, each fp16 on the GPU, each prefilling C - 1 positions of random tokens and
then timing N greedy decode steps (one token per sequence per step, the next token read
back to the host every step, as an engine checking stop criteria must):

- hf: transformers GPT2LMHeadModel, eager, with its own KV cache.
- graph: a static-KV GPT-2 decode step in plain PyTorch (every tensor allocated once,
  the position on the device) captured with torch.cuda.graph and replayed per token.
- compile: the same step under torch.compile(mode="reduce-overhead") with the KV
  tensors marked as static addresses; reports whether CUDA graphs really engaged.

Prints one line per peer and, with --json, writes them as a list of objects.
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F
from transformers import GPT2LMHeadModel


class StaticGPT2:
    """GPT-2 decode over a static KV cache: what a graph captures never moves."""

    def __init__(self, model, batch, capacity):
        t, c = model.transformer, model.config
        self.blocks, self.ln_f = t.h, t.ln_f
        self.wte, self.wpe = t.wte.weight, t.wpe.weight
        self.d, self.n_head, self.eps = c.n_embd, c.n_head, c.layer_norm_epsilon
        self.hd = self.d // self.n_head
        shape = (c.n_layer, batch, self.n_head, capacity, self.hd)
        device, dtype = self.wte.device, self.wte.dtype
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.tokens = torch.zeros(batch, dtype=torch.long, device=device)
        self.position = torch.zeros(1, dtype=torch.long, device=device)
        self.arange = torch.arange(capacity, device=device)

    def step(self, tokens, position):
        """Next greedy token of every sequence; `position` is a 1-element device tensor."""
        b = tokens.shape[0]
        x = self.wte[tokens] + self.wpe[position]
        visible = (self.arange <= position).view(1, 1, 1, -1)
        for layer, blk in enumerate(self.blocks):
            h = F.layer_norm(x, (self.d,), blk.ln_1.weight, blk.ln_1.bias, self.eps)
            # Conv1D weights are (in, out): y = b + x W.
            q, k, v = torch.addmm(blk.attn.c_attn.bias, h, blk.attn.c_attn.weight).split(self.d, 1)
            self.k[layer].index_copy_(2, position, k.view(b, self.n_head, 1, self.hd))
            self.v[layer].index_copy_(2, position, v.view(b, self.n_head, 1, self.hd))
            a = F.scaled_dot_product_attention(
                q.view(b, self.n_head, 1, self.hd), self.k[layer], self.v[layer], attn_mask=visible
            )
            x = x + torch.addmm(blk.attn.c_proj.bias, a.reshape(b, self.d), blk.attn.c_proj.weight)
            h = F.layer_norm(x, (self.d,), blk.ln_2.weight, blk.ln_2.bias, self.eps)
            f = F.gelu(torch.addmm(blk.mlp.c_fc.bias, h, blk.mlp.c_fc.weight), approximate="tanh")
            x = x + torch.addmm(blk.mlp.c_proj.bias, f, blk.mlp.c_proj.weight)
        x = F.layer_norm(x, (self.d,), self.ln_f.weight, self.ln_f.bias, self.eps)
        return (x @ self.wte.t()).argmax(-1)


def timed(steps, one_step):
    """Mean wall ms of `one_step()` over `steps` calls, each ending with the token on the host."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3 / steps


def prefill(static, prompt):
    """Runs the static step eagerly over the prompt's positions."""
    for p in range(prompt.shape[1]):
        static.position.fill_(p)
        static.tokens.copy_(static.step(prompt[:, p], static.position))
    static.position.fill_(prompt.shape[1])


def peer_hf(model, prompt, steps):
    with torch.no_grad():
        out = model(prompt, use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)

        def one_step():
            nonlocal past, nxt
            out = model(nxt[:, None], past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)
            nxt.cpu()

        for _ in range(3):  # first calls: kernel selection, allocator growth
            one_step()
        return timed(steps, one_step), ""


def peer_graph(model, prompt, steps):
    batch, context = prompt.shape[0], prompt.shape[1] + 2 + steps
    with torch.no_grad():
        static = StaticGPT2(model, batch, context)
        prefill(static, prompt)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                static.step(static.tokens, static.position)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = static.step(static.tokens, static.position)

        def one_step():
            graph.replay()
            static.tokens.copy_(out)
            static.position.add_(1)
            static.tokens.cpu()

        one_step()
        return timed(steps, one_step), ""


def peer_compile(model, prompt, steps):
    from torch._dynamo.utils import counters

    batch, context = prompt.shape[0], prompt.shape[1] + 1 + steps + 3
    with torch.no_grad():
        static = StaticGPT2(model, batch, context)
        prefill(static, prompt)
        torch._dynamo.mark_static_address(static.k)
        torch._dynamo.mark_static_address(static.v)
        step = torch.compile(static.step, mode="reduce-overhead", fullgraph=True)

        def one_step():
            nxt = step(static.tokens, static.position)
            static.tokens.copy_(nxt)
            static.position.add_(1)
            static.tokens.cpu()

        for _ in range(3):  # compile, record, first replay
            one_step()
        ms = timed(steps, one_step)
    skips = counters["inductor"].get("cudagraph_skips", 0)
    note = "cudagraphs engaged" if skips == 0 else f"cudagraphs SKIPPED ({skips} times)"
    return ms, note


PEERS = {"hf": peer_hf, "graph": peer_graph, "compile": peer_compile}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--context", type=int, default=128, help="position the timed steps start at")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--peers", default="hf,graph,compile")
    parser.add_argument("--json")
    args = parser.parse_args()
    model = GPT2LMHeadModel.from_pretrained(args.model_dir, torch_dtype=torch.float16).cuda().eval()
    if args.context + args.steps + 5 > model.config.n_positions:
        raise SystemExit(f"--context {args.context} + --steps {args.steps} exceeds n_positions")
    generator = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, 50256, (args.batch, args.context - 1), generator=generator).cuda()
    rows = []
    for name in args.peers.split(","):
        ms, note = PEERS[name](model, prompt, args.steps)
        row = {"peer": name, "batch": args.batch, "context": args.context, "ms_per_token": ms,
               "tokens_per_s": 1e3 / ms * args.batch, "note": note}
        rows.append(row)
        print(f"{name:8s} batch {args.batch:2d} context {args.context:4d}: {ms:8.3f} ms/token {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
