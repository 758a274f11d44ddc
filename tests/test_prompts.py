"""Prompt templates: content, hashing, structured-output helpers and user template files."""

from __future__ import annotations

import re

import pytest

from reflection.errors import InputError
from reflection.reflect.parse import parse
from reflection.reflect.prompts import (
    DEFAULT_PROMPTS,
    build_messages,
    format_block,
    grammar,
    json_schema,
    load_prompts,
    prompt_hash,
)


def _user(messages):
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


def test_instruction_prompt_names_every_criterion():
    text = _user(build_messages("instruction", "Write a poem.", "", "Roses are red."))
    for criterion in ("complexity of the topic", "level of detail required", "knowledge required",
                      "ambiguity", "logical reasoning", "helpfulness, relevance, accuracy"):  # fmt: skip
        assert criterion in text
    assert "[Instruction]\nWrite a poem.\n[End]" in text
    assert "[Answer]\nRoses are red.\n[End]" in text
    assert "[Input]" not in text
    assert text.endswith(format_block("instruction"))


def test_response_prompt_gives_input_its_own_section():
    text = _user(build_messages("response", "Summarise.", "Long text here.", "Short."))
    assert "[Input]\nLong text here.\n[End]" in text
    assert "its input, " in text
    assert "helpfulness, relevance, accuracy and level of detail" in text
    assert "[Better Answer]" in text and "[New Instruction]" not in text


def test_both_uses_the_response_template():
    assert build_messages("both", "a", "", "b") == build_messages("response", "a", "", "b")
    assert prompt_hash("both") == prompt_hash("response")


def test_dataset_braces_are_never_expanded():
    text = _user(build_messages("response", "Print {output} and {format}", "{input}", "x {y}"))
    assert "Print {output} and {format}" in text
    assert "[Input]\n{input}\n[End]" in text
    assert "[Answer]\nx {y}\n[End]" in text


def test_prompt_hash_changes_with_what_shapes_the_request():
    hashes = {
        prompt_hash("instruction"),
        prompt_hash("response"),
        prompt_hash("compress"),
        prompt_hash("response", json_mode=True),
    }
    assert len(hashes) == 4
    assert all(re.fullmatch(r"[0-9a-f]{16}", h) for h in hashes)
    assert prompt_hash("response") == prompt_hash("response", prompts=DEFAULT_PROMPTS)


def test_json_format_and_schema_agree():
    block = format_block("instruction", json_mode=True)
    assert '"critique", "instruction", "input", "output"' in block
    schema = json_schema("instruction")["json_schema"]["schema"]
    assert schema["required"] == ["critique", "instruction", "input", "output"]
    assert json_schema("both")["json_schema"]["schema"]["required"] == ["critique", "output"]
    assert json_schema("compress")["json_schema"]["schema"]["required"] == ["instruction"]


def test_grammar_lists_each_section_in_order():
    text = grammar("instruction")
    tags = re.findall(r"\[([A-Za-z ]+)\]", text.split("\n")[0])
    assert tags == ["Critique", "End", "New Instruction", "End", "New Input", "End",
                    "New Answer", "End"]  # fmt: skip
    assert '("[New Input]' in text  # optional
    assert grammar("both") == grammar("response")


def test_a_reply_in_the_requested_format_parses():
    block = format_block("instruction")
    reply = block.split("\n", 1)[1]
    for hint, text in (("(your critique)", "C"), ("(the new instruction)", "I"),
                       ("(the answer)", "A")):  # fmt: skip
        reply = reply.replace(hint, text)
    parsed = parse(reply, "instruction")
    assert (parsed.status, parsed.critique, parsed.instruction, parsed.output) == ("ok", "C", "I", "A")  # fmt: skip
    assert parsed.input == ""  # the input hint copied back counts as no input


def _write(tmp_path, text):
    path = tmp_path / "prompts.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_template_file_overrides_one_kind(tmp_path):
    path = _write(
        tmp_path,
        '[response]\nsystem = "Be brief."\nuser = """Q: {instruction}\n{input_section}A: {output}"""\n',
    )
    prompts = load_prompts(path)
    messages = build_messages("response", "Why?", "", "Because.", prompts=prompts)
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1]["content"].startswith("Q: Why?\nA: Because.\n\nReply in exactly")
    assert prompts.instruction == DEFAULT_PROMPTS.instruction
    assert prompts.response.source == str(path)
    assert prompt_hash("response", prompts=prompts) != prompt_hash("response")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[response]\nuser = "{instruction} {input}"\n', "[response] user message lacks {output}"),
        ('[instruction]\nuser = "{output} {input}"\n', "lacks {instruction}"),
        ('[response]\nuser = "{instruction} {output}"\n', "lacks {input_section}"),
        (
            '[response]\nuser = "{instruction} {input} {output} {answer}"\n',
            "unknown placeholder {answer}",
        ),
        ('[reponse]\nuser = "x"\n', "unknown section [reponse]"),
        ("[response]\nsystem = 'x'\n", "[response] needs a `user` message"),
        ('[response]\nuser = "unterminated\n', "not a valid TOML template file"),
        (
            '[response]\nsystem = 3\nuser = "{instruction} {input} {output}"\n',
            "`system` must be a string",
        ),
    ],
)
def test_template_file_errors_name_the_file_and_the_problem(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_prompts(path)
    assert str(caught.value).startswith(str(path) + ": ")
    assert message in str(caught.value)


def test_missing_template_file(tmp_path):
    with pytest.raises(InputError, match="template file not found"):
        load_prompts(tmp_path / "nope.toml")
