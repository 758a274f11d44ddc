"""Record real response reflections of the local SmolLM2 oracle, as `reflection reflect` asks.

    python tests/data/oracle_replies/record_reflections.py [--start 0] [--count 24] \
        [--max-tokens 512] [--threads 1] [--alpaca PATH]

Starts llama.cpp's server with SmolLM2-135M-Instruct and sends, for each Alpaca record, the very
request `reflection reflect --mode response --dialect llama.cpp --max-tokens N` sends (built by
the pipeline's Planner), then appends the reply and its finish reason to
smollm2_reflections.jsonl beside this file. Which replies are kept for the tests, and what each
is (empty, truncated, meta-talk, repetition, fluent), is decided by hand in
tests/test_content_checks.py, so re-recording means re-checking those labels.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from reflection.records import Sample  # noqa: E402
from reflection.reflect.local_oracle import LocalOracle  # noqa: E402
from reflection.reflect.plan import Planner  # noqa: E402
from reflection.reflect.pricing import PriceTable  # noqa: E402
from reflection.reflect.prompts import DEFAULT_PROMPTS  # noqa: E402
from reflection.reflect.settings import OracleConfig  # noqa: E402

ALPACA = ROOT.parent / "shared" / "data" / "alpaca_cherry_3k.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--start", type=int, default=0, help="first Alpaca record to use")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--alpaca", type=Path, default=ALPACA)
    parser.add_argument("--out", type=Path, default=HERE / "smollm2_reflections.jsonl")
    # One thread: on a busy 2-core machine two OpenMP threads spin-wait on each other (12x
    # slower here).
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    records = json.loads(args.alpaca.read_text(encoding="utf-8"))
    log = HERE / ".record.log"
    with LocalOracle(threads=args.threads, log=log) as oracle, open(args.out, "a") as out:
        config = OracleConfig(
            model=oracle.model, base_url=oracle.base_url, api_key="local", dialect="llama.cpp",
            max_tokens=args.max_tokens, temperature=0.7,
        )  # fmt: skip
        planner = Planner(config, DEFAULT_PROMPTS, PriceTable())
        for index in range(args.start, args.start + args.count):
            record = records[index]
            sample = Sample(record["instruction"], record.get("input", ""), record["output"])
            job = planner.first_jobs([sample], "response", False)[0]
            request = urllib.request.Request(
                oracle.base_url + "/chat/completions", data=job.payload.encode(),
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            started = time.time()
            with urllib.request.urlopen(request, timeout=900) as response:
                reply = json.loads(response.read())
            choice = reply["choices"][0]
            line = {
                "record": index, "instruction": sample.instruction, "input": sample.input,
                "output": sample.output, "kind": "response", "format": "grammar",
                "max_tokens": args.max_tokens, "finish_reason": choice["finish_reason"],
                "completion_tokens": reply.get("usage", {}).get("completion_tokens"),
                "reply": choice["message"]["content"], "seconds": round(time.time() - started, 1),
            }  # fmt: skip
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            print(index, choice["finish_reason"], line["completion_tokens"], line["seconds"], flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
