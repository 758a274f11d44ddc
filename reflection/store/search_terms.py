"""The words of a full-text index that begin with a prefix, for spelling a prefix query out
(`search.probed_search`, `search.bounded_search`), remembered per database until the index
changes.

FTS5 answers a prefix query by merging the lists of every word the prefix begins, over the
whole index, whatever rowid range is asked for; spelt out as those words, it reads each from
where the range starts. The words come from an `fts5vocab` table, which counts each word's
rows as it lists it: for a common word that is a read of its whole list (at 10,000,000
samples, "explain" took 20 ms in the samples' index and 42 ms in the candidates'). A review
session searches the same words again and again (each window it loads, each filter change),
so the words are kept with the index's structure record (FTS5 rewrites it whenever the index
changes: rows added, deleted or merged), and read again only when that differs.
"""

from __future__ import annotations

import re

from .connection import Connection

# What unicode61 keeps as a token: letters and digits (`\w` less the underscore).
TOKEN = re.compile(r"[^\W_]+")
# A prefix worth expanding into the words of the index it begins: at most this many.
EXPAND_AT_MOST = 64
# Prefixes remembered (all forgotten past it: a session uses a handful).
REMEMBERED = 256
# FTS5's structure record: its rowid in the %_data table (FTS5_STRUCTURE_ROWID).
_STRUCTURE = 10

# (database file, table, prefix) -> (the index's structure record, the words)
_remembered: dict[tuple[str, str, str], tuple[bytes, list[str]]] = {}


def expanded(conn: Connection, table: str, text: str) -> str | None:
    """The FTS5 query of `text` (every token as a prefix) with each prefix spelt out as the
    whole words of `table`'s index that begin with it ("explain"* as "explain" OR
    "explained" OR ...). None where a token is not ASCII (the tokenizer folds diacritics,
    which this does not mimic) or begins more than EXPAND_AT_MOST words."""
    tokens = TOKEN.findall(text)
    if not all(token.isascii() for token in tokens):
        return None
    groups = []
    for token in (t.lower() for t in tokens):
        words = _words(conn, table, token)
        if len(words) > EXPAND_AT_MOST:
            return None
        groups.append("(" + " OR ".join(f'"{word}"' for word in words) + ")" if words else "")
    if not all(groups):  # a token that begins no word: nothing in this index matches
        return '""'  # (an empty phrase matches no row)
    return " AND ".join(groups)


def _words(conn: Connection, table: str, prefix: str) -> list[str]:
    """Up to EXPAND_AT_MOST + 1 words of `table`'s index beginning with `prefix`: remembered
    per database file while the index's structure record stays the same (not for a database
    in memory, which has no name to tell it by, nor inside a transaction, whose writes the
    record may not show yet)."""
    key, version = None, None
    if not conn.in_transaction:
        path = next(row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main")
        row = conn.execute(f"SELECT block FROM {table}_fts_data WHERE id = {_STRUCTURE}").fetchone()
        if path and row is not None:
            key, version = (path, table, prefix), bytes(row[0])
    hit = None if key is None else _remembered.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{table}_fts_terms"
        f" USING fts5vocab(main, {table}_fts, 'row')"
    )
    words = [
        row[0]
        for row in conn.execute(
            f"SELECT term FROM temp.{table}_fts_terms WHERE term >= ? AND term < ? LIMIT ?",
            [prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1), EXPAND_AT_MOST + 1],
        )
    ]
    if key is not None and version is not None:
        if len(_remembered) >= REMEMBERED:
            _remembered.clear()
        _remembered[key] = (version, words)
    return words
