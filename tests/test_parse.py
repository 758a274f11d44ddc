"""The reply parser, table-driven: written replies for every way oracles break the format,
and real replies recorded from the local SmolLM2 oracle (tests/data/oracle_replies/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reflection.reflect.parse import parse, parse_json_reply, parse_reply, sections

REPLIES = Path(__file__).parent / "data" / "oracle_replies"

INSTRUCTION_FULL = """[Critique]
The instruction is vague: "a poem" says nothing about form or length.
The answer is four generic lines.
[End]
[New Instruction]
Write a sonnet about autumn rain that uses at least two metaphors.
[End]
[New Input]
Theme words: copper, hush, gutter.
[End]
[New Answer]
Copper leaves hush the gutter's song...
[End]"""

# (id, reply, kind, json_mode, expected status, expected fields (exact), reason contains)
CASES = [
    ("canonical instruction with input", INSTRUCTION_FULL, "instruction", False, "ok",
     {"instruction": "Write a sonnet about autumn rain that uses at least two metaphors.",
      "input": "Theme words: copper, hush, gutter.",
      "output": "Copper leaves hush the gutter's song..."}, ""),
    ("canonical instruction without input",
     "[Critique]\nToo easy.\n[End]\n[New Instruction]\nList 5 primes above 100.\n[End]\n"
     "[New Answer]\n101, 103, 107, 109, 113\n[End]", "instruction", False, "ok",
     {"critique": "Too easy.", "input": "", "output": "101, 103, 107, 109, 113"}, ""),
    ("canonical response", "[Critique]\nShort.\n[End]\n[Better Answer]\nA full answer.\n[End]",
     "response", False, "ok", {"critique": "Short.", "output": "A full answer."}, ""),
    ("both uses the response format", "[Critique]\nOk.\n[End]\n[Better Answer]\nBetter.\n[End]",
     "both", False, "ok", {"output": "Better."}, ""),
    ("compress", "[New Instruction]\nSummarise this text: The cat sat.\n[End]", "compress", False,
     "ok", {"instruction": "Summarise this text: The cat sat."}, ""),
    ("colon labels", "Critique: too thin.\nNew Instruction: Explain TCP slow start.\n"
     "New Answer: TCP slow start doubles the window each RTT.", "instruction", False, "ok",
     {"critique": "too thin.", "instruction": "Explain TCP slow start.",
      "output": "TCP slow start doubles the window each RTT."}, ""),
    ("markdown headings", "## Critique\nVague.\n\n## New Instruction\nDescribe photosynthesis "
     "in three steps.\n\n## New Answer\n1. Light\n2. Water\n3. Sugar", "instruction", False, "ok",
     {"output": "1. Light\n2. Water\n3. Sugar"}, ""),
    ("bold labels with inline text", "**Critique:** Lacks detail.\n\n**Better Answer:**\n"
     "Paris is the capital of France.", "response", False, "ok",
     {"critique": "Lacks detail.", "output": "Paris is the capital of France."}, ""),
    ("no [End] anywhere", "[Critique]\nWeak.\n[Better Answer]\nStrong answer.\nSecond line.",
     "response", False, "ok", {"critique": "Weak.", "output": "Strong answer.\nSecond line."}, ""),
    ("chatter around sections", "Sure! Here is my review.\n\n[Critique]\nMeh.\n[End]\n"
     "Now the answer:\n[Better Answer]\nGood.\n[End]\nI hope this helps!", "response", False,
     "ok", {"critique": "Meh.", "output": "Good."}, ""),
    ("format echoed back, nothing else", "[Critique]\n(your critique)\n[End]\n[Better Answer]\n"
     "(the answer)\n[End]", "response", False, "failed", {"output": ""}, "copied back"),
    ("format echoed, then the real reply", "[Critique]\n(your critique)\n[End]\n[Better Answer]\n"
     "(the answer)\n[End]\n\n[Critique]\nReal critique.\n[End]\n[Better Answer]\nReal.\n[End]",
     "response", False, "ok", {"critique": "Real critique.", "output": "Real."}, ""),
    ("hint line above real text", "[Critique]\n(your critique)\nIt is wrong.\n[End]\n"
     "[Better Answer]\n(the answer)\nRight.\n[End]", "response", False, "ok",
     {"critique": "It is wrong.", "output": "Right."}, ""),
    ("angle-bracket placeholder", "[Critique]\n<critique here>\n[End]\n[Better Answer]\nX.\n[End]",
     "response", False, "partial", {"critique": "", "output": "X."}, "[Critique]"),
    ("ellipsis placeholder", "[Critique]\n...\n[End]\n[Better Answer]\nY.\n[End]", "response",
     False, "partial", {"output": "Y."}, "no [Critique] section"),
    ("missing critique", "[Better Answer]\nOnly an answer.\n[End]", "response", False, "partial",
     {"output": "Only an answer."}, "no [Critique] section"),
    ("instruction without its answer", "[Critique]\nC.\n[End]\n[New Instruction]\nDo X.\n[End]",
     "instruction", False, "partial", {"instruction": "Do X.", "output": ""},
     "no [New Answer] section"),
    ("instruction with only a critique", "[Critique]\nC.\n[End]", "instruction", False, "failed",
     {"critique": "C."}, "[New Instruction] section, [New Answer] section"),
    ("no tags at all", "Paris is the capital of France.", "response", False, "failed",
     {"output": ""}, "no [Critique] section, [Better Answer] section"),
    ("empty reply", "", "response", False, "failed", {}, "empty reply"),
    ("whitespace reply", " \n\t ", "instruction", False, "failed", {}, "empty reply"),
    ("None reply", None, "compress", False, "failed", {}, "empty reply"),
    ("new input None", "[Critique]\nC\n[End]\n[New Instruction]\nI\n[End]\n[New Input]\nNone\n"
     "[End]\n[New Answer]\nA\n[End]", "instruction", False, "ok", {"input": ""}, ""),
    ("new input N/A", "[Critique]\nC\n[End]\n[New Instruction]\nI\n[End]\n[New Input]\nN/A\n"
     "[End]\n[New Answer]\nA\n[End]", "instruction", False, "ok", {"input": ""}, ""),
    ("upper-case tags", "[CRITIQUE]\nLoud.\n[END]\n[BETTER ANSWER]\nQuiet.\n[END]", "response",
     False, "ok", {"critique": "Loud.", "output": "Quiet."}, ""),
    ("[End of ...] closers", "[Critique]\nA.\n[End of Critique]\n[Better Answer]\nB.\n"
     "[End of Answer]", "response", False, "ok", {"critique": "A.", "output": "B."}, ""),
    ("alias names", "Feedback:\nToo short.\n\nImproved Response:\nLonger.", "response", False,
     "ok", {"critique": "Too short.", "output": "Longer."}, ""),
    ("revised instruction alias", "Analysis: weak\nRevised Instruction: Compare A and B.\n"
     "New Response: A differs from B.", "instruction", False, "ok",
     {"instruction": "Compare A and B.", "output": "A differs from B."}, ""),
    ("xml-ish tags", "<critique>\nHmm.\n</critique>\n<better answer>\nFine.\n</better answer>",
     "response", False, "ok", {"critique": "Hmm.", "output": "Fine."}, ""),
    ("duplicate section keeps the first", "[Critique]\nFirst.\n[End]\n[Better Answer]\nOne.\n"
     "[End]\n[Better Answer]\nTwo.\n[End]", "response", False, "ok", {"output": "One."}, ""),
    ("content on the tag line", "[Critique] Brief.\n[New Instruction] Write a haiku.\n"
     "[New Answer] Old pond, frog jumps.", "instruction", False, "ok",
     {"critique": "Brief.", "instruction": "Write a haiku.", "output": "Old pond, frog jumps."},
     ""),
    ("sentence starting with a section word is not a tag", "Critique is hard to give.\n"
     "[Better Answer]\nX.", "response", False, "partial", {"critique": "", "output": "X."},
     "[Critique]"),
    ("citation brackets kept", "[Critique]\nC.\n[End]\n[Better Answer]\nAs shown in [1], "
     "water boils at 100 C [2].\n[End]", "response", False, "ok",
     {"output": "As shown in [1], water boils at 100 C [2]."}, ""),
    ("inline [End]", "[Critique]\nC. [End]\n[Better Answer]\nAnswer text. [End]", "response",
     False, "ok", {"critique": "C.", "output": "Answer text."}, ""),
    ("multi-paragraph answer", "[Critique]\nC\n[End]\n[Better Answer]\nPara one.\n\nPara two."
     "\n[End]", "response", False, "ok", {"output": "Para one.\n\nPara two."}, ""),
    # JSON mode
    ("json ok", json.dumps({"critique": "c", "output": "o"}), "response", True, "ok",
     {"critique": "c", "output": "o"}, ""),
    ("json in a code fence", '```json\n{"critique": "c", "instruction": "i", "input": "",'
     ' "output": "o"}\n```', "instruction", True, "ok", {"instruction": "i", "output": "o"}, ""),
    ("json after chatter", 'Here you go: {"critique": "c", "output": "o"} Enjoy.', "response",
     True, "ok", {"output": "o"}, ""),
    ("json missing output", '{"critique": "c"}', "response", True, "failed", {"critique": "c"},
     'no JSON "output"'),
    ("json missing critique", '{"output": "o"}', "response", True, "partial", {"output": "o"},
     'no JSON "critique"'),
    ("json invalid", '{"critique": c, "output": o}', "response", True, "failed", {},
     "invalid JSON"),
    ("json cut off at the token limit", '{"critique": "Too short.", "output": "The first'
     ' part of a long answ', "response", True, "partial",
     {"critique": "Too short.", "output": "The first part of a long answ"}, "invalid JSON"),
    ("json mode, tagged reply", "[Critique]\nC.\n[End]\n[Better Answer]\nB.\n[End]", "response",
     True, "ok", {"output": "B."}, ""),
    ("json non-string value", '{"critique": ["a", "b"], "output": "o"}', "response", True, "ok",
     {"critique": '["a", "b"]'}, "critique is list"),
    ("json aliases", '{"feedback": "f", "new_instruction": "i", "answer": "a"}', "instruction",
     True, "ok", {"critique": "f", "instruction": "i", "output": "a"}, ""),
    ("json list around the object", '[{"output": "o"}]', "response", True, "partial",
     {"output": "o"}, 'no JSON "critique"'),
    ("json mode, prose reply", "I cannot do that.", "response", True, "failed", {},
     "no JSON object"),
    ("json scalar", "42", "response", True, "failed", {}, "no JSON object"),
    ("json empty object", "{}", "response", True, "failed", {}, 'no JSON "critique"'),
    ("json placeholder values", '{"critique": "(your critique)", "output": "(the answer)"}',
     "response", True, "failed", {"output": ""}, 'no JSON "critique"'),
    ("json compress", '{"instruction": "Translate: hola"}', "compress", True, "ok",
     {"instruction": "Translate: hola"}, ""),
]  # fmt: skip


def _recorded() -> list[tuple]:
    """Real SmolLM2 replies with their expected parse, hand-checked (see record.py)."""
    path = REPLIES / "smollm2.jsonl"
    expected = json.loads((REPLIES / "smollm2_expected.json").read_text(encoding="utf-8"))
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        item = json.loads(line)
        want = expected[str(number)]
        cases.append((
            f"smollm2 #{number} {item['kind']} {item['format']}", item["reply"], item["kind"],
            item["format"] == "json", want["status"], want.get("fields", {}),
            want.get("reason", ""),
        ))  # fmt: skip
    return cases


ALL = CASES + _recorded()


def test_corpus_is_large_enough():
    assert len(ALL) >= 40
    assert len(_recorded()) >= 10


@pytest.mark.parametrize(
    ("reply", "kind", "json_mode", "status", "fields", "reason"),
    [case[1:] for case in ALL],
    ids=[case[0] for case in ALL],
)
def test_parse(reply, kind, json_mode, status, fields, reason):
    parsed = parse(reply, kind, json_mode=json_mode)
    assert parsed.status == status, parsed
    for name, value in fields.items():
        assert getattr(parsed, name) == value, (name, parsed)
    if reason:
        assert reason in parsed.reason
    if status == "ok" and not reason:
        assert parsed.reason == ""


def test_dispatch_matches_the_specific_parsers():
    assert parse(INSTRUCTION_FULL, "instruction") == parse_reply(INSTRUCTION_FULL, "instruction")
    text = '{"critique": "c", "output": "o"}'
    assert parse(text, "response", json_mode=True) == parse_json_reply(text, "response")


def test_sections_reports_echoed_fields():
    found = sections("[Critique]\n(your critique)\n[End]\n[Better Answer]\nok\n[End]")
    assert found == {"output": "ok", "_echoed": "critique"}


def _demo_candidates():
    path = Path(__file__).resolve().parent.parent / "data" / "demo" / "candidates.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("row", _demo_candidates(), ids=lambda r: f"{r['position']}-{r['kind']}")
def test_demo_replies_parse_to_their_fields(row):
    """128 hand-written replies: HTML closing tags inside answers (the hostile sample),
    answers that open with bold or italics, a reply cut off without its [End], a broken one."""
    parsed = parse_reply(row["raw"], row["kind"])
    assert parsed.status == row["status"], parsed.reason
    if row["status"] != "ok":
        return
    fields = ("critique", "output") + (
        ("instruction", "input") if row["kind"] == "instruction" else ()
    )
    for name in fields:
        assert getattr(parsed, name) == row[name].strip(), name


@pytest.mark.parametrize(
    ("text", "output"),
    [
        (
            "[Better Answer]\nUse <b>bold</b> and </p> freely.\n[End]",
            "Use <b>bold</b> and </p> freely.",
        ),
        ("[Better Answer]\nDone.\n</answer>\ntrailing chatter", "Done."),
        ("**Better Answer:** **Bold** start.", "**Bold** start."),
        ("[Better Answer]\n*Italic* start and end *here*\n[End]", "*Italic* start and end *here*"),
    ],
)
def test_html_and_emphasis_survive(text, output):
    assert parse_reply(text, "response").output == output


def test_a_reply_cut_off_mid_sentence_is_partial():
    text = "[Critique]\nThin.\n[End]\n[Better Answer]\nCompound interest grows because the"
    parsed = parse_reply(text, "response")
    assert parsed.status == "partial" and "cut off" in parsed.reason
    complete = "[Critique]\nThin.\n[End]\n[Better Answer]\nIt grows on itself."
    assert parse_reply(complete, "response").status == "ok"
