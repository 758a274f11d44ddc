"""IFD / r-IFD with the real SmolLM2 student on real Alpaca pairs.

The fast path (decoder only, projection at target positions, length-bucketed padded batches)
must equal the seed's way (four forward passes with labels at batch size 1) within 1e-3
relative; the sequences must follow the definitions token for token.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from click.testing import CliRunner  # noqa: E402

from reflection import Candidate, ConfigError, Sample  # noqa: E402
from reflection.cli import main  # noqa: E402
from reflection.scoring import kernels  # noqa: E402
from reflection.scoring.ifd import compute_ifd  # noqa: E402
from reflection.scoring.pairs import PARTS, IfdResult, Pair, build_sequences  # noqa: E402
from reflection.scoring.reference import reference_ifd  # noqa: E402
from reflection.scoring.runner import score_student  # noqa: E402
from reflection.scoring.student import resolve_student, smollm2_path  # noqa: E402
from reflection.scoring.templates import render_prompt, render_reverse_prompt  # noqa: E402

pytestmark = pytest.mark.student


def _pairs(records, indices):
    return [
        Pair(records[i]["instruction"], records[i]["input"], records[i]["output"]) for i in indices
    ]


def _short(records, n, with_input):
    """The first n real records with a short answer (100-400 characters): CI stays fast."""
    found = [
        i
        for i, r in enumerate(records[:400])
        if bool(r["input"]) == with_input and 100 <= len(r["output"]) <= 400
    ]
    return found[:n]


def _assert_close(fast: IfdResult, ref: IfdResult, parts=PARTS):
    for part in parts:
        a, b = fast.losses[part], ref.losses[part]
        assert (a is None) == (b is None), part
        if b is not None:
            assert abs(a - b) <= 1e-3 * abs(b), (part, a, b)


# --------------------------------------------------------------------------- definitions


def test_alpaca_template_is_the_seeds():
    assert render_prompt("alpaca", "Do X.") == (
        "Below is an instruction that describes a task. Write a response that appropriately"
        " completes the request.\n\n### Instruction:\nDo X.\n\n### Response:"
    )
    assert render_prompt("alpaca", "Do X.", "data") == (
        "Below is an instruction that describes a task, paired with an input that provides"
        " further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nDo X.\n\n### Input:\ndata\n\n### Response:"
    )
    assert render_prompt("wiz", "Do X.") == "Do X.\n\n### Response:"
    assert render_prompt("none", "Do X.", "data") == "Do X.\ndata\n"
    assert render_prompt("vicuna", "Do X.", "data").endswith("USER: Do X.\nInput:\ndata ASSISTANT:")
    assert render_reverse_prompt("wizardlm", "Y") == (
        "Below is the response to an instruction, please guess the corresponding instruction"
        " for the given response.\nY\nGenerate the instruction for the above response."
        "\n\n### Response:"
    )
    with pytest.raises(ConfigError, match="unknown template 'llama9'"):
        render_prompt("llama9", "x")


def test_sequences_follow_the_definitions(student):
    tok = student.tokenizer
    pair = Pair("Summarize the text.", "Cats sleep a lot.", "Cats are sleepy animals.")
    seqs, lengths, truncated = build_sequences(tok, pair, "alpaca")
    prompt = render_prompt("alpaca", pair.instruction, pair.input)
    reverse = render_reverse_prompt("alpaca", pair.output)
    assert not truncated
    assert seqs["A_direct"].ids == tok.encode(pair.output) and seqs["A_direct"].start == 1
    assert seqs["Q_direct"].ids == tok.encode(pair.instruction + pair.input)
    a_cond, q_cond = seqs["A_condition"], seqs["Q_condition"]
    assert a_cond.ids == tok.encode(prompt + pair.output)
    assert a_cond.start == len(tok.encode(prompt))
    assert tok.decode(a_cond.ids[a_cond.start :]).strip() == pair.output
    assert q_cond.ids == tok.encode(reverse + pair.instruction + pair.input)
    assert tok.decode(q_cond.ids[q_cond.start :]) == pair.instruction + pair.input
    assert lengths == {part: len(seqs[part].ids) for part in PARTS}


def test_truncation_is_the_seeds(student):
    tok = student.tokenizer
    output = "word " * 300
    pair = Pair("Repeat a word.", "", output)
    seqs, lengths, truncated = build_sequences(tok, pair, "alpaca", max_length=64)
    prompt_len = len(tok.encode(render_prompt("alpaca", pair.instruction)))
    reverse_len = min(64, len(tok.encode(render_reverse_prompt("alpaca", output))))
    assert truncated and lengths["A_direct"] == len(tok.encode(output))
    assert len(seqs["A_direct"].ids) == 64 - prompt_len + 1
    assert len(seqs["A_condition"].ids) == 64
    assert len(seqs["Q_direct"].ids) == min(len(tok.encode(pair.instruction)), 64 - reverse_len + 1)
    # The instruction lies beyond 64 tokens of R(y) + instruction: no target left, no loss.
    assert seqs["Q_condition"].targets == 0
    fast = compute_ifd(student, [pair], max_length=64)[0]
    ref = reference_ifd(student, pair, max_length=64)
    assert fast.losses["Q_condition"] is None and ref.losses["Q_condition"] is None
    assert fast.rifd_ppl is None and fast.metrics()["rifd_ppl"] is None
    _assert_close(fast, ref)


def test_empty_output_gets_no_scores(student):
    (result,) = compute_ifd(student, [Pair("Say nothing.", "", "")])
    assert result.losses == dict.fromkeys(PARTS) and result.note == "empty output"
    assert all(value is None for value in result.metrics().values())


# --------------------------------------------------------------------------- values


@pytest.fixture(scope="module")
def seed_values(student, alpaca_records):
    """Five real pairs and the seed's four-pass values for them (PyTorch's own kernels, so
    computed once for both kernel cases below)."""
    indices = [*_short(alpaca_records, 3, False), *_short(alpaca_records, 2, True)]
    pairs = _pairs(alpaca_records, indices)
    return pairs, [reference_ifd(student, p, "alpaca") for p in pairs]


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["default", "onednn"])
def test_batched_equals_the_seeds_four_passes_on_real_data(
    student, seed_values, kernel, monkeypatch
):
    # Both linear kernels the fast path may pick (kernels.py), whichever this machine prefers.
    monkeypatch.setenv("REFLECTION_LINEAR_KERNEL", kernel)
    if kernels.linear_kernel(student.model, "cpu") != kernel:
        pytest.skip(f"this PyTorch build has no {kernel} linear")
    pairs, refs = seed_values
    # A repeated pair exercises the de-duplication; several pairs share the template prefix.
    # The CPU's settings, odd chunk edges, and a GPU's (one padded batch a group, 1024 rows).
    settings = (
        {"batch_size": 1},
        {"batch_size": 4, "rows_per_chunk": 7},
        {"batch_size": 64, "batch_tokens": 32768, "rows_per_chunk": 1024},
    )
    for options in settings:
        fast = compute_ifd(student, pairs + pairs[:1], "alpaca", **options)
        for f, r in zip(fast, refs + refs[:1], strict=True):
            _assert_close(f, r)
    f = fast[0]
    assert f.ifd_ppl == pytest.approx(
        math.exp(f.losses["A_condition"]) / math.exp(f.losses["A_direct"])
    )
    assert f.metrics()["ifd_loss"] == pytest.approx(f.losses["A_condition"] / f.losses["A_direct"])
    assert f.metrics()["ppl_Q_condition"] == pytest.approx(math.exp(f.losses["Q_condition"]))


@pytest.mark.slow
@pytest.mark.parametrize("template", ["chat", "none", "vicuna"])
def test_other_templates_agree_with_the_reference(student, alpaca_records, template):
    pairs = _pairs(
        alpaca_records, [*_short(alpaca_records, 1, False), *_short(alpaca_records, 1, True)]
    )
    fast = compute_ifd(student, pairs, template, batch_size=2)
    for f, p in zip(fast, pairs, strict=True):
        _assert_close(f, reference_ifd(student, p, template))


@pytest.mark.slow
def test_an_unrelated_instruction_raises_ifd(student, alpaca_records):
    """IFD = ppl(answer | instruction) / ppl(answer): the right instruction helps, so it is lower."""
    own = [r for r in alpaca_records[:40] if not r["input"] and len(r["output"]) > 200][:4]
    pairs = [Pair(r["instruction"], "", r["output"]) for r in own]
    shuffled = [
        Pair(own[(i + 1) % len(own)]["instruction"], "", r["output"]) for i, r in enumerate(own)
    ]
    matched = compute_ifd(student, pairs, parts=("A_direct", "A_condition"))
    mismatched = compute_ifd(student, shuffled, parts=("A_direct", "A_condition"))
    for good, bad in zip(matched, mismatched, strict=True):
        assert bad.ifd_ppl > good.ifd_ppl
        # ppl(answer) alone does not depend on the instruction.
        assert bad.losses["A_direct"] == pytest.approx(good.losses["A_direct"], rel=1e-5)


# --------------------------------------------------------------------------- the store and CLI


def test_resolve_student_names(tmp_path):
    folder, name, display = resolve_student("smollm2")
    assert (folder / name) == smollm2_path() and display == "SmolLM2-135M-Instruct.Q4_1"
    with pytest.raises(ConfigError, match="never downloaded"):
        resolve_student(tmp_path / "missing.gguf")
    with pytest.raises(ConfigError, match="never downloaded"):
        resolve_student("HuggingFaceTB/SmolLM2-135M")


@pytest.mark.slow
def test_score_student_stores_resumes_and_flags(student, store, alpaca_records):
    ds = store.ensure_dataset("alpaca")
    records = alpaca_records[:2]
    store.add_samples(ds.id, [Sample(r["instruction"], r["input"], r["output"]) for r in records])
    first, second = store.sample_ids(ds.id)
    # A deliberately misaligned reflection: the answer of another sample.
    (cid,) = store.add_candidates(
        [Candidate(first, "instruction", instruction=records[0]["instruction"], output=records[1]["output"])]
    )  # fmt: skip
    done = []
    summaries = score_student(store, ds.id, ["ifd"], student=student, limit=1, progress=done.append)
    assert [(s.family, s.scored, s.skipped) for s in summaries] == [("ifd", 2, 0)]
    assert sum(done) == 2
    scorer = "SmolLM2-135M-Instruct.Q4_1@alpaca"
    stored = {(s.candidate_id, s.metric): s for s in store.scores_for(first)}
    assert {m for (c, m) in stored if c is None} == {
        "ifd_ppl",
        "ifd_loss",
        "ppl_A_direct",
        "ppl_A_condition",
    }
    ifd = stored[(None, "ifd_ppl")]
    assert ifd.scorer == scorer and ifd.detail["template"] == "alpaca"
    assert (
        ifd.detail["student"] == "SmolLM2-135M-Instruct.Q4_1" and ifd.detail["max_length"] == 2048
    )
    assert ifd.detail["misaligned"] == (ifd.value >= 1)
    ref = reference_ifd(
        student, Pair(records[0]["instruction"], records[0]["input"], records[0]["output"])
    )
    assert ifd.value == pytest.approx(ref.ifd_ppl, rel=1e-3)
    assert stored[(cid, "ifd_ppl")].value > ifd.value
    run = store.get_run(summaries[0].run_id)
    assert run.settings["linear_kernel"] == kernels.linear_kernel(student.model, "cpu")
    # Resumable: a second call computes only the new sample, through the CLI this time.
    result = CliRunner().invoke(
        main,
        [
            "score",
            "--db",
            str(store.path),
            "--metric",
            "ifd",
            "--metric",
            "rifd",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ifd: 1 scored, 2 already done (SmolLM2-135M-Instruct.Q4_1@alpaca" in result.output
    assert "rifd: 3 scored, 0 already done" in result.output
    assert store.stats(ds.id)["scores_by_metric"]["rifd_ppl"] == 3
    runs = store.runs("score")
    assert [r.status for r in runs] == ["done", "done", "done"]
    assert runs[-1].settings["scorer"] == scorer


# --------------------------------------------------------------------------- endpoint backend


class _PromptLogprobServer:
    """A vLLM-style /v1/completions answering prompt_logprobs from the in-process model."""

    def __init__(self, student, with_logprobs=True):
        import http.server
        import json
        import threading

        import torch

        model = student.model

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ids = body["prompt"]
                with torch.inference_mode():
                    logits = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
                choice = {"index": 0, "text": "x", "finish_reason": "length"}
                if with_logprobs and body.get("prompt_logprobs") is not None:
                    choice["prompt_logprobs"] = [None] + [
                        {str(t): {"logprob": logits[p - 1, t].item(), "rank": 1}} for p, t in enumerate(ids) if p
                    ]  # fmt: skip
                payload = json.dumps({"object": "text_completion", "choices": [choice]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_endpoint_backend_matches_in_process_values(student, alpaca_records):
    from reflection.scoring.endpoint import EndpointStudent

    server = _PromptLogprobServer(student)
    try:
        remote = EndpointStudent(
            server.url, "smollm2", student.tokenizer, student.name, concurrency=1
        )
        pairs = _pairs(alpaca_records, _short(alpaca_records, 2, False))
        for got, pair in zip(compute_ifd(remote, pairs), pairs, strict=True):
            _assert_close(got, reference_ifd(student, pair))
        assert remote.scorer("alpaca") == student.scorer("alpaca")
    finally:
        server.close()


def test_endpoint_without_prompt_logprobs_is_refused(student):
    from reflection.scoring.endpoint import EndpointStudent

    server = _PromptLogprobServer(student, with_logprobs=False)
    try:
        remote = EndpointStudent(server.url, "smollm2", student.tokenizer, student.name)
        with pytest.raises(ConfigError, match="prompt_logprobs"):
            compute_ifd(remote, [Pair("Say hi.", "", "Hi there.")])
    finally:
        server.close()
