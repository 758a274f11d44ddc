"""IFD / r-IFD throughput: the seed's loop against ours, on the same records, in one process.

Baseline (the seed's way, Cherry LLM / Reflection-Tuning `data_analysis.py`): the model loaded
with `device_map="auto"` and `output_hidden_states=True`, four forward passes a sample at batch
size 1 with labels, under `torch.no_grad`. Ours: `reflection.scoring.ifd.compute_ifd` (decoder
only, projection at target positions, the template prefix's keys and values reused,
length-bucketed padded batches, linear layers on oneDNN where `scoring/kernels.py` measures it
faster than PyTorch's default MKL). Both compute all four
losses of every record; the table reports samples a second, the ratio, and the largest
relative difference between the two sets of losses.

    python bench/bench_ifd.py                       # 100 records, CPU (or CUDA when present)
    python bench/bench_ifd.py --n 100 --device cuda --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alpaca_data import load_alpaca  # noqa: E402


def seed_loop(model, tokenizer, records, template, max_length, device):
    """The seed's per-sample loop, four passes with labels (its two helper functions inlined)."""
    import torch

    from reflection.scoring.templates import render_prompt, render_reverse_prompt

    def whole(text, limit):
        ids = tokenizer.encode(text, return_tensors="pt", truncation=True, max_length=limit).to(
            device
        )
        with torch.no_grad():
            out = model(ids, labels=ids.contiguous())
        return out.loss.to("cpu").item()

    def part(text, target, limit):
        ids = tokenizer.encode(text, return_tensors="pt", truncation=True, max_length=limit).to(
            device
        )
        start = len(tokenizer.encode(text[: text.rfind(target)]))
        labels = ids.clone()
        labels[0, :start] = -100
        with torch.no_grad():
            out = model(ids, labels=labels)
        return out.loss.to("cpu").item()

    results = []
    for r in records:
        instruction, input, output = r["instruction"], r.get("input", ""), r["output"]
        prompt = render_prompt(template, instruction, input)
        reverse = render_reverse_prompt(template, output)
        p_len = tokenizer.encode(prompt, return_tensors="pt", truncation=True, max_length=max_length).shape[1]  # fmt: skip
        r_len = tokenizer.encode(reverse, return_tensors="pt", truncation=True, max_length=max_length).shape[1]  # fmt: skip
        results.append(
            {
                "Q_direct": whole(instruction + input, max_length - r_len + 1),
                "A_direct": whole(output, max_length - p_len + 1),
                "Q_condition": part(reverse + instruction + input, instruction, max_length),
                "A_condition": part(prompt + output, output, max_length),
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="records (the first N)")
    parser.add_argument(
        "--data", type=Path, default=None, help="Alpaca JSON (default: alpaca_data.py's choice)"
    )
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--template", default="alpaca")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument(
        "--rounds", type=int, default=4, help="alternate the paths over this many rounds"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reflection.scoring.ifd import compute_ifd
    from reflection.scoring.kernels import linear_kernel
    from reflection.scoring.pairs import Pair
    from reflection.scoring.student import default_device, load_student, resolve_student

    device = args.device or default_device()
    records = [r for r in load_alpaca(args.data) if r["output"]][: args.n]
    pairs = [Pair(r["instruction"], r.get("input", ""), r["output"]) for r in records]
    folder, gguf_file, name = resolve_student(args.student)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}

    seed_model = AutoModelForCausalLM.from_pretrained(
        folder, device_map="auto", output_hidden_states=True,
        local_files_only=True, **kwargs,
    )  # fmt: skip
    seed_model.eval()
    seed_tok = AutoTokenizer.from_pretrained(folder, local_files_only=True, **kwargs)
    student = load_student(args.student, device)
    kernel = linear_kernel(student.model, device)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    # Warm both paths (kernels, allocator) on a few records outside the timing.
    seed_loop(seed_model, seed_tok, records[:2], args.template, args.max_length, device)
    compute_ifd(student, pairs[:8], args.template, batch_size=args.batch_size)

    # The machine may be shared: alternate the two paths over rounds of records (seed first,
    # then ours first, ...) so that a burst of outside load falls on both alike.
    seed, ours, t_seed, t_ours = [], [], 0.0, 0.0
    size = max(1, -(-len(records) // args.rounds))
    for number, start in enumerate(range(0, len(records), size)):
        part, part_pairs = records[start : start + size], pairs[start : start + size]
        for which in ("seed", "ours") if number % 2 == 0 else ("ours", "seed"):
            sync()
            t0 = time.perf_counter()
            if which == "seed":
                seed += seed_loop(
                    seed_model, seed_tok, part, args.template, args.max_length, device
                )
            else:
                ours += compute_ifd(student, part_pairs, args.template, batch_size=args.batch_size, max_length=args.max_length)  # fmt: skip
            sync()
            elapsed = time.perf_counter() - t0
            if which == "seed":
                t_seed += elapsed
            else:
                t_ours += elapsed

    worst = max(
        abs(o.losses[k] - s[k]) / abs(s[k])
        for o, s in zip(ours, seed, strict=True)
        for k in s
        if s[k]
    )
    tokens = sum(sum(o.tokens.values()) for o in ours)
    figures = {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)",
        "student": name, "records": len(records), "tokens": tokens, "linear_kernel": kernel,
        "seed_s": round(t_seed, 2), "ours_s": round(t_ours, 2),
        "seed_samples_per_s": round(len(records) / t_seed, 2),
        "ours_samples_per_s": round(len(records) / t_ours, 2),
        "ratio": round(t_seed / t_ours, 2), "max_rel_diff": worst,
    }  # fmt: skip
    print(
        f"IFD / r-IFD, {len(records)} Alpaca records ({tokens} tokens), {name}, {figures['device']}"
    )
    print(f"our linear kernel: {kernel} (the seed loop keeps PyTorch's default)")
    print(f"{'path':<42} {'seconds':>8} {'samples/s':>10}")
    print(f"{'seed loop (device_map, hidden states, bs 1)':<42} {t_seed:>8.2f} {figures['seed_samples_per_s']:>10.2f}")  # fmt: skip
    print(f"{'reflection.scoring.ifd (bucketed batches)':<42} {t_ours:>8.2f} {figures['ours_samples_per_s']:>10.2f}")  # fmt: skip
    print(f"ratio {figures['ratio']:.2f}x; largest relative loss difference {worst:.2e}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
