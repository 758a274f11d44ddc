"""Student load time: dequantizing the GGUF (the baseline) against the cached safetensors copy.

Each load runs in a fresh process, as every `reflection score` does, and is timed from the
call to a ready model and tokenizer (imports excluded). The cache lives in a temporary folder.

    python bench/bench_student_load.py            # SmolLM2-135M, 3 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, os, sys, time
sys.path.insert(0, {root!r})
import torch, transformers  # imports are not what is measured
from reflection.scoring import student
t0 = time.perf_counter()
loaded = student.load_student({spec!r}, "cpu")
elapsed = time.perf_counter() - t0
print(json.dumps({{"s": elapsed, "from_cache": getattr(loaded.model, "hf_quantizer", None) is None}}))
"""


def _load_once(spec: str, cache: str) -> dict:
    env = {**os.environ, "REFLECTION_CACHE": cache, "HF_HUB_OFFLINE": "1"}
    code = CHILD.format(root=str(ROOT), spec=spec)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cache = str(Path(folder) / "cache")
        first = _load_once(args.student, cache)  # dequantizes and fills the cache
        cold, warm = [first["s"]], []
        for _ in range(args.rounds):
            cold.append(_load_once(args.student, "off")["s"])
            hit = _load_once(args.student, cache)
            assert hit["from_cache"], "the second load did not read the cache"
            warm.append(hit["s"])
    figures = {
        "student": args.student,
        "gguf_load_s": round(min(cold), 2),
        "cached_load_s": round(min(warm), 2),
        "ratio": round(min(cold) / min(warm), 1),
        "first_load_with_cache_write_s": round(first["s"], 2),
    }
    print(f"student load, {args.student}, best of {args.rounds} fresh processes")
    print(f"{'path':<40} {'seconds':>8}")
    print(f"{'GGUF, dequantized (cache off)':<40} {figures['gguf_load_s']:>8.2f}")
    print(f"{'first load, writing the cache':<40} {figures['first_load_with_cache_write_s']:>8.2f}")
    print(f"{'cached safetensors':<40} {figures['cached_load_s']:>8.2f}")
    print(f"ratio {figures['ratio']}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
