"""The records of a JSON list, one at a time, from a file of any size.

`json.load` holds the whole file and every record at once: several times the file in memory.
This reads it a megabyte at a time and decodes one element after another with the standard
decoder (`raw_decode`, in C), so memory stays at the size of a chunk and the largest record.
Errors name the line and column as `json.loads` of the whole file would.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from .records import type_name

CHUNK = 1 << 20
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _Text:
    """A file decoded in chunks; `text[pos:]` is what is left, `line` counts what was dropped."""

    def __init__(self, path: Path, handle):
        self.path, self.handle = path, handle
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text, self.pos, self.line, self.eof = "", 0, 1, False

    def more(self, at_least: int = CHUNK) -> bool:
        """Append at least `at_least` more bytes' worth of text; False at the end."""
        if self.eof:
            return False
        # Drop what was consumed, up to the last line start: columns stay countable.
        cut = self.text.rfind("\n", 0, self.pos) + 1
        if cut:
            self.line += self.text.count("\n", 0, cut)
            self.text, self.pos = self.text[cut:], self.pos - cut
        data = self.handle.read(max(at_least, CHUNK))
        try:
            chunk = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:  # exc.object: the bytes held back, then `data`
            line = self.line + self.text.count("\n") + exc.object[: exc.start].count(b"\n")
            raise InputError(
                self.path,
                f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8",
                line=line,
            ) from None
        self.text += chunk
        self.eof = not data
        return True

    def skip_space(self) -> None:
        while True:
            space = _SPACE.match(self.text, self.pos)
            self.pos = space.end() if space else self.pos
            if self.pos < len(self.text) or not self.more():
                return

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def error(self, message: str, pos: int) -> InputError:
        line = self.line + self.text.count("\n", 0, pos)
        column = pos - self.text.rfind("\n", 0, pos)
        return InputError(self.path, f"invalid JSON: {message} (column {column})", line=line)

    def value(self) -> Any:
        """The next JSON value; reads on while a value may only be cut short by the chunk."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                cut_short = (
                    exc.msg.startswith("Unterminated string") or exc.pos >= len(self.text) - 8
                )
                if cut_short and self.more(len(self.text) - self.pos):
                    continue
                raise self.error(exc.msg, exc.pos) from None
            if end < len(self.text) or self.eof or not self.more():
                self.pos = end
                return value


def iter_json_list(path: Path) -> Iterator[tuple[int, Any]]:
    """(record number, value) of each element of the JSON list a file holds."""
    with open(path, "rb") as handle:
        text = _Text(path, handle)
        first = text.peek()
        if not first:
            raise InputError(path, "the file is empty")
        if first != "[":
            value = text.value()
            if text.peek():
                raise text.error("Extra data", text.pos)
            raise InputError(path, f"expected a JSON list of records, got {type_name(value)}")
        text.pos += 1
        if text.peek() == "]":
            text.pos += 1
            _end(text)
            return
        number = 0
        while True:
            number += 1
            if not text.peek():
                raise text.error("Expecting value", text.pos)
            yield number, text.value()
            sep = text.peek()
            if sep == ",":
                text.pos += 1
            elif sep == "]":
                text.pos += 1
                _end(text)
                return
            else:
                raise text.error("Expecting ',' delimiter", text.pos)


def _end(text: _Text) -> None:
    if text.peek():
        raise text.error("Extra data", text.pos)
