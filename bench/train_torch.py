"""PyTorch CPU reference for bench/train.ts (benchmark only; never used by tests or CI).

Builds the same llama-architecture decoder as merglot's engine (RMSNorm, RoPE, grouped-query attention with a
causal mask, SwiGLU MLP, tied embeddings), wraps every linear module in a LoRA of rank r (base frozen), and times
forward + backward + loss on random tokens in float32. Prints one JSON line: {"tokens_per_s": ..., ...}.
Usage: python3 bench/train_torch.py '<json: {hidden, intermediate, layers, heads, kv_heads, vocab, batch, seq, r, steps, threads}>'
"""

import json
import math
import sys
import time

import torch
import torch.nn.functional as F


class Lora(torch.nn.Module):
    def __init__(self, fan_in, fan_out, r, alpha):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(fan_out, fan_in) * 0.02, requires_grad=False)
        self.a = torch.nn.Parameter(torch.empty(r, fan_in))
        torch.nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        self.b = torch.nn.Parameter(torch.randn(fan_out, r) * 0.01)
        self.s = alpha / r

    def forward(self, x):
        return F.linear(x, self.weight) + F.linear(F.linear(x, self.a), self.b) * self.s


class RMSNorm(torch.nn.Module):
    def __init__(self, n, eps=1e-5):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    d = x.shape[-1] // 2
    rot = torch.cat((-x[..., d:], x[..., :d]), dim=-1)
    return x * cos + rot * sin


class Layer(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i, nh, nkv, r = c["hidden"], c["intermediate"], c["heads"], c["kv_heads"], c["r"]
        self.hd = h // nh
        self.nh, self.nkv = nh, nkv
        al = 2 * r
        self.q = Lora(h, nh * self.hd, r, al)
        self.k = Lora(h, nkv * self.hd, r, al)
        self.v = Lora(h, nkv * self.hd, r, al)
        self.o = Lora(nh * self.hd, h, r, al)
        self.gate = Lora(h, i, r, al)
        self.up = Lora(h, i, r, al)
        self.down = Lora(i, h, r, al)
        self.n1 = RMSNorm(h)
        self.n2 = RMSNorm(h)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        y = self.n1(x)
        q = self.q(y).view(b, t, self.nh, self.hd).transpose(1, 2)
        k = self.k(y).view(b, t, self.nkv, self.hd).transpose(1, 2)
        v = self.v(y).view(b, t, self.nkv, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        # explicit attention, as HF's eager implementation (torch 1.13 has no fused SDPA)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        a = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, t, -1))
        y = self.n2(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


def main():
    c = json.loads(sys.argv[1])
    torch.manual_seed(0)
    torch.set_num_threads(c.get("threads", 2))
    emb = torch.nn.Parameter(torch.randn(c["vocab"], c["hidden"]) * 0.02, requires_grad=False)
    layers = torch.nn.ModuleList([Layer(c) for _ in range(c["layers"])])
    norm = RMSNorm(c["hidden"])
    hd = c["hidden"] // c["heads"]
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.outer(torch.arange(c["seq"]).float(), inv)
    cos = torch.cat((ang, ang), -1).cos()
    sin = torch.cat((ang, ang), -1).sin()
    params = [p for p in layers.parameters() if p.requires_grad]
    tokens = torch.randint(0, c["vocab"], (c["batch"], c["seq"] + 1))

    def step():
        x = emb[tokens[:, :-1]]
        for layer in layers:
            x = layer(x, cos, sin)
        logits = norm(x) @ emb.t()
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), tokens[:, 1:].reshape(-1))
        for p in params:
            p.grad = None
        loss.backward()
        return loss.item()

    step()  # warm-up: allocator, OpenMP pool
    step()
    times = []
    for _ in range(c["steps"]):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    dt = sorted(times)[len(times) // 2]  # median step: robust to a stray slow step on a shared machine
    n_params = sum(p.numel() for p in layers.parameters()) + emb.numel()
    print(json.dumps({"tokens_per_s": c["batch"] * c["seq"] / dt, "s_per_step": dt, "params": n_params,
                      "s_per_step_min": min(times), "s_per_step_max": max(times),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
