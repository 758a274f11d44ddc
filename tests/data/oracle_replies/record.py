"""Record real replies of the local SmolLM2 oracle for the parser's test corpus.

    python tests/data/oracle_replies/record.py [--count 12] [--max-tokens 160]

Starts llama.cpp's server with SmolLM2-135M-Instruct, asks for reflections of real Alpaca
pairs in every kind and format (plain, grammar-shaped tags, JSON schema) and appends each reply
to smollm2.jsonl beside this file. The expected parse of each is written by hand in
tests/test_parse.py, so re-recording means re-checking those expectations.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import openai

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from reflection.reflect.local_oracle import LocalOracle  # noqa: E402
from reflection.reflect.prompts import build_messages, grammar, json_schema  # noqa: E402

ALPACA = ROOT.parent / "shared" / "data" / "alpaca_cherry_3k.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--start", type=int, default=0, help="first Alpaca record to use")
    args = parser.parse_args()
    records = json.loads(ALPACA.read_text(encoding="utf-8"))
    styles = itertools.cycle(
        [(k, f) for f in ("grammar", "json", "plain") for k in ("response", "instruction")]
        + [("compress", "grammar")]
    )
    with LocalOracle() as oracle, open(HERE / "smollm2.jsonl", "a", encoding="utf-8") as out:
        client = openai.OpenAI(base_url=oracle.base_url, api_key="local", timeout=600)
        for index in range(args.start, args.start + args.count):
            kind, form = next(styles)
            record = records[index]
            messages = build_messages(
                kind, record["instruction"], record.get("input", ""), record["output"],
                json_mode=form == "json",
            )  # fmt: skip
            extra: dict = {}
            if form == "json":
                schema = json_schema(kind)["json_schema"]["schema"]
                extra["response_format"] = {"type": "json_object", "schema": schema}
            elif form == "grammar":
                extra["extra_body"] = {"grammar": grammar(kind)}
            started = time.time()
            reply = client.chat.completions.create(
                model=oracle.model, messages=messages, max_tokens=args.max_tokens,
                temperature=0.7, **extra,
            )  # fmt: skip
            choice = reply.choices[0]
            line = {
                "record": index, "kind": kind, "format": form,
                "finish_reason": choice.finish_reason, "reply": choice.message.content,
                "seconds": round(time.time() - started, 1),
            }  # fmt: skip
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            print(index, kind, form, choice.finish_reason, line["seconds"], flush=True)


if __name__ == "__main__":
    main()
