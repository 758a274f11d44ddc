"""Which samples a job works on, as the Run page lets people choose them."""

from __future__ import annotations

from ..errors import ConfigError
from ..store import Store

SELECTIONS = ("all", "undecided", "first", "ids")


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
        known = set(store.sample_ids(dataset_id))
        missing = [i for i in wanted if i not in known]
        if missing:
            raise ConfigError(f"sample {missing[0]} is not in this dataset")
        return wanted
    raise ConfigError(f"unknown selection {how!r}; use one of {', '.join(SELECTIONS)}")
