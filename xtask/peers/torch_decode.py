"""PyTorch peers of the decode benchmark, on the weights `host export` wrote.

Usage: python3 torch_decode.py MODEL_DIR --batch B --contexts C1,C2 [--steps N] [--json FILE]

Three peers (four rows), each fp16 on the GPU, each timing N greedy decode steps placed so that they
attend to C positions on average (one token per sequence per step, the next token read
back to the host every step, as an engine checking stop criteria must):

- hf: transformers GPT2LMHeadModel, eager, with its own KV cache, after a prefill of
  random tokens, with SDPA's cuDNN backend off; hf-cudnn: the same with it on, torch's
  default on an H100 (see peer_hf for what that costs).
- graph: a static-KV GPT-2 decode step in plain PyTorch (every tensor allocated once, the
  position on the device, attention masked to the positions so far) captured with
  torch.cuda.graph and replayed per token; its KV cache, sized to the context, is filled
  with random values instead of a prefill, as our benchmark does.
- compile: the same step under torch.compile(mode="reduce-overhead") with the KV
  tensors marked as static addresses; reports whether CUDA graphs really engaged.

Prints one line per peer and context and, with --json, writes them as a list of objects.
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
        self.k = torch.rand(shape, device=device, dtype=dtype) * 2 - 1
        self.v = torch.rand(shape, device=device, dtype=dtype) * 2 - 1
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


def start(context, steps):
    """First position of the timed steps, so that they attend to `context` on average."""
    return context - steps // 2


def time_hf(model, batch, context, steps, generator):
    """ms per greedy step of transformers' own decode loop after a random prefill."""
    first = start(context, steps) - 3  # three warm-up steps
    prompt = torch.randint(0, 50256, (batch, first), generator=generator).cuda()
    out = model(prompt, use_cache=True)
    past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)

    def one_step():
        nonlocal past, nxt
        out = model(nxt[:, None], past_key_values=past, use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)
        nxt.cpu()

    for _ in range(3):  # first calls: kernel selection, allocator growth
        one_step()
    return timed(steps, one_step)


def peer_hf(model, batch, contexts, steps):
    """transformers at its best, SDPA with its cuDNN backend off (row hf), and as it runs
    by default on an H100 (row hf-cudnn), where the first step at each new KV length
    builds a cuDNN plan and costs tens of milliseconds. A decode loop meets a new length
    every step, so the default row is what a user gets; the printed line also gives the
    default at lengths it has met before, which shows where the time goes."""
    rows = []
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for context in contexts:
            torch.backends.cuda.enable_cudnn_sdp(False)
            best = time_hf(model, batch, context, steps, generator)
            torch.backends.cuda.enable_cudnn_sdp(True)
            new = time_hf(model, batch, context, steps, generator)
            met = time_hf(model, batch, context, steps, generator)
            print(
                f"hf-cudnn batch {batch:2d} context {context:4d}: {new:8.3f} ms/token at new "
                f"KV lengths, {met:.3f} at lengths met before",
                flush=True,
            )
            rows.append(("hf", context, best, "SDPA with cuDNN attention off"))
            rows.append(("hf-cudnn", context, new, "a cuDNN plan built per new KV length"))
    return rows


def capacity(context, steps):
    """Cache slots for the timed steps at `context` (a multiple of 64): sized per context,
    as a bucketed engine would, so masked attention reads no more than it must."""
    return (context + steps // 2 + 4 + 63) // 64 * 64


def peer_graph(model, batch, contexts, steps):
    rows = []
    with torch.no_grad():
        for context in contexts:
            static = StaticGPT2(model, batch, capacity(context, steps))
            static.position.fill_(start(context, steps) - 1)
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
            rows.append(("graph", context, timed(steps, one_step), ""))
            del graph, static
    return rows


def peer_compile(model, batch, contexts, steps):
    from torch._dynamo.utils import counters

    rows = []
    with torch.no_grad():
        for context in contexts:
            static = StaticGPT2(model, batch, capacity(context, steps))
            torch._dynamo.mark_static_address(static.k)
            torch._dynamo.mark_static_address(static.v)
            step = torch.compile(static.step, mode="reduce-overhead", fullgraph=True)

            def one_step():
                nxt = step(static.tokens, static.position)
                static.tokens.copy_(nxt)
                static.position.add_(1)
                static.tokens.cpu()

            static.position.fill_(start(context, steps) - 3)
            for _ in range(3):  # compile, record, first replay
                one_step()
            rows.append(("compile", context, timed(steps, one_step), None))
            del step, static
    skips = counters["inductor"].get("cudagraph_skips", 0)
    note = "cudagraphs engaged" if skips == 0 else f"cudagraphs SKIPPED ({skips} times)"
    return [(name, context, ms, note) for name, context, ms, _ in rows]


PEERS = {"hf": peer_hf, "graph": peer_graph, "compile": peer_compile}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--contexts", default="128", help="mean positions attended to")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--peers", default="hf,graph,compile")
    parser.add_argument("--json")
    args = parser.parse_args()
    model = GPT2LMHeadModel.from_pretrained(args.model_dir, dtype=torch.float16).cuda().eval()
    contexts = [int(c) for c in args.contexts.split(",")]
    for context in contexts:
        if start(context, args.steps) < 4 or context + args.steps // 2 > model.config.n_positions:
            raise SystemExit(f"context {context} with --steps {args.steps} does not fit")
    rows = []
    for peer in args.peers.split(","):
        for name, context, ms, note in PEERS[peer](model, args.batch, contexts, args.steps):
            row = {"peer": name, "batch": args.batch, "context": context, "ms_per_token": ms,
                   "tokens_per_s": 1e3 / ms * args.batch, "note": note}
            rows.append(row)
            print(f"{name:8s} batch {args.batch:2d} context {context:4d}: {ms:8.3f} ms/token {note}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
