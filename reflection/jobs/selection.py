"""Which samples a job works on, as the Run page lets people choose them.

A job keeps its choice as a rule (`Selection`), not as the ids it names: a job on every
undecided sample of 10,000,000 would have kept them all in its spec as JSON, and rebuilt a
list and a set of them each time it started. The rule is worked out when the job starts, and
again when it resumes: samples decided in the meantime are left out (no spend on them), and
samples added after the job was started never join it (`upto`, the store's largest sample id
at that moment).
"""

from __future__ import annotations

from array import array
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError
from ..records import stored_id
from ..store import Store

SELECTIONS = ("all", "undecided", "first", "ids")
_LOOKUP = 5_000  # typed ids checked against the dataset at a time


def parse_ids(text: str) -> list[int]:
    """Sample ids typed as "3, 7-9 12": single ids and inclusive ranges, in order, no repeats."""
    found: dict[int, None] = {}
    for part in text.replace(",", " ").split():
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise ConfigError(f"{part!r} is not a sample id or a range like 10-20") from None
        if last < first:
            raise ConfigError(f"range {part!r} runs backwards")
        if last - first > 1_000_000:
            raise ConfigError(f"range {part!r} is too long")
        found.update(dict.fromkeys(range(first, last + 1)))
    return list(found)


@dataclass(frozen=True)
class Selection:
    """A job's samples: all, the undecided ones, the first `first`, or the typed `ids`; of
    those, only samples with ids up to `upto` (None: no bound)."""

    how: str = "all"
    first: int = 0
    ids: str = ""
    upto: int | None = None

    def validate(self) -> None:
        if self.how not in SELECTIONS:
            raise ConfigError(f"unknown selection {self.how!r}; use one of {', '.join(SELECTIONS)}")
        if self.how == "first" and self.first < 1:
            raise ConfigError("choose at least one sample")
        if self.how == "ids":
            parse_ids(self.ids)

    def describe(self) -> str:
        """For a run record: "all", "undecided", "first 20", "ids 3, 7-9"."""
        return {"first": f"first {self.first}", "ids": f"ids {self.ids}"}.get(self.how, self.how)

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Selection:
        upto = record.get("upto")
        return cls(how=str(record.get("how", "all")), first=int(record.get("first", 0)),
                   ids=str(record.get("ids", "")), upto=None if upto is None else int(upto))  # fmt: skip

    def sample_ids(
        self, store: Store, dataset_id: int, limit: int | None = None
    ) -> array[int] | None:
        """The ids the rule names now, in source order but for typed ids (None: every sample
        of the dataset), 8 bytes each. `limit`: only the first that many are needed."""
        if self.how in ("all", "undecided", "first"):
            if self.how == "all" and self.upto is None:
                return None
            if self.how == "first":
                limit = self.first if limit is None else min(limit, self.first)
            return store.sample_id_array(
                dataset_id, limit, upto=self.upto, undecided=self.how == "undecided"
            )
        return array("q", parse_ids(self.ids))  # checked against the dataset when chosen


def typed(ids: list[int]) -> str:
    """Ids as `parse_ids` reads them, runs written as ranges ("3-9 12")."""
    parts: list[str] = []
    start = 0
    for at in range(1, len(ids) + 1):
        if at < len(ids) and ids[at] == ids[at - 1] + 1 and ids[at] - ids[start] <= 1_000_000:
            continue
        first, last = ids[start], ids[at - 1]
        parts.append(str(first) if first == last else f"{first}-{last}")
        start = at
    return " ".join(parts)


def select_samples(
    store: Store, dataset_id: int, how: str, *, first: int = 0, ids: str = "", bound: bool = True
) -> Selection:
    """The Run page's choice as a `Selection`, checked: typed ids must be the dataset's.
    `bound`: samples added from now on stay out (a job, which may resume later); a run that
    works the selection out at once needs no bound."""
    chosen = Selection(how, first if how == "first" else 0, ids if how == "ids" else "",
                       upto=store.newest_sample_id() if bound else None)  # fmt: skip
    chosen.validate()
    if how == "ids":
        wanted = parse_ids(ids)
        known: set[int] = set()  # looked up a chunk at a time, not every id of the dataset
        for start in range(0, len(wanted), _LOOKUP):
            part = wanted[start : start + _LOOKUP]
            known.update(stored_id(sample) for sample in store.samples(dataset_id, part))
        missing = [i for i in wanted if i not in known]
        if missing:
            raise ConfigError(f"sample {missing[0]} is not in this dataset")
    return chosen
