"""PyTorch DDP (gloo) on the engine's peer workload: a MiniLM-shaped BERT classifier, random token ids, AdamW.

   /usr/bin/python3 ddp_bert.py --ranks 2 --precision fp32 [--rows 16 --tokens 64 --steps 8]

Each rank takes cores/ranks threads, as the engine's in-process ranks do. Prints one JSON line: rank 0's step times.
"""
import argparse, json, math, os, socket, time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

VOCAB, HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS = 30522, 384, 6, 12, 1536, 512


class Layer(nn.Module):
    """Hugging Face's BertLayer: self-attention, dense + LayerNorm over the residual, GELU feed-forward."""

    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))
        self.attention_output, self.attention_norm = nn.Linear(HIDDEN, HIDDEN), nn.LayerNorm(HIDDEN, eps=1e-12)
        self.intermediate, self.output = nn.Linear(HIDDEN, INTERMEDIATE), nn.Linear(INTERMEDIATE, HIDDEN)
        self.output_norm, self.dropout = nn.LayerNorm(HIDDEN, eps=1e-12), nn.Dropout(0.1)

    def forward(self, hidden, additive_mask):
        b, t, _ = hidden.shape
        heads = lambda x: x.view(b, t, HEADS, HIDDEN // HEADS).transpose(1, 2)
        q, k, v = heads(self.query(hidden)), heads(self.key(hidden)), heads(self.value(hidden))
        scores = q.matmul(k.transpose(-2, -1)) / math.sqrt(HIDDEN // HEADS) + additive_mask
        context = scores.softmax(-1).matmul(v).transpose(1, 2).reshape(b, t, HIDDEN)
        attended = self.attention_norm(self.dropout(self.attention_output(context)) + hidden)
        return self.output_norm(self.dropout(self.output(F.gelu(self.intermediate(attended)))) + attended)


class BertClassifier(nn.Module):
    def __init__(self, classes=2):
        super().__init__()
        self.words, self.positions, self.types = nn.Embedding(VOCAB, HIDDEN, padding_idx=0), nn.Embedding(POSITIONS, HIDDEN), nn.Embedding(2, HIDDEN)
        self.norm, self.dropout = nn.LayerNorm(HIDDEN, eps=1e-12), nn.Dropout(0.1)
        self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
        self.pooler, self.classifier = nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, classes)

    def forward(self, ids, types, mask):
        positions = torch.arange(ids.shape[1]).unsqueeze(0)
        hidden = self.dropout(self.norm(self.words(ids) + self.positions(positions) + self.types(types)))
        additive = torch.zeros(mask.shape, dtype=hidden.dtype).masked_fill(~mask, float("-inf"))[:, None, None, :]
        for layer in self.layers:
            hidden = layer(hidden, additive)
        return self.classifier(self.dropout(torch.tanh(self.pooler(hidden[:, 0]))))


def run(rank, args, port, queue):
    torch.set_num_threads(max(1, os.cpu_count() // args.ranks))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.ranks)
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(BertClassifier())
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
    generator = torch.Generator().manual_seed(1 + rank)
    ids = torch.randint(1, VOCAB, (args.rows, args.tokens), generator=generator)
    types, mask = torch.zeros_like(ids), torch.ones(args.rows, args.tokens, dtype=torch.bool)
    labels = torch.arange(args.rows) % 2
    bf16 = args.precision == "bf16"

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(ids, types, mask)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DDP all-reduces the gradient buckets during backward
        optimizer.step()

    model.train()
    for _ in range(2):
        step()
    seconds = []
    for _ in range(args.steps):
        dist.barrier()
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    if rank == 0:
        queue.put(seconds)
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    processes = [context.Process(target=run, args=(rank, args, port, queue)) for rank in range(args.ranks)]
    for p in processes:
        p.start()
    seconds = queue.get()
    for p in processes:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"rank process exited with {p.exitcode}")
    print(json.dumps({"torch": torch.__version__, "threads_per_rank": max(1, os.cpu_count() // args.ranks), "seconds": seconds}))


if __name__ == "__main__":
    main()
