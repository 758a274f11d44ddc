"""Which samples a job works on, as the Run page lets people choose them."""

from __future__ import annotations

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


def select_samples(
    store: Store, dataset_id: int, how: str, *, first: int = 0, ids: str = ""
) -> list[int] | None:
    """Sample ids for a job: None for all, the undecided ones, the first n, or typed ids."""
    if how == "all":
        return None
    if how == "undecided":
        from ..store.queue import QueueQuery

        return store.queue_ids(dataset_id, QueueQuery(statuses=("undecided",)))
    if how == "first":
        return store.sample_id_array(dataset_id, first).tolist()
    if how == "ids":
        wanted = parse_ids(ids)
        known: set[int] = set()  # looked up a chunk at a time, not every id of the dataset
        for start in range(0, len(wanted), _LOOKUP):
            part = wanted[start : start + _LOOKUP]
            known.update(stored_id(sample) for sample in store.samples(dataset_id, part))
        missing = [i for i in wanted if i not in known]
        if missing:
            raise ConfigError(f"sample {missing[0]} is not in this dataset")
        return wanted
    raise ConfigError(f"unknown selection {how!r}; use one of {', '.join(SELECTIONS)}")
