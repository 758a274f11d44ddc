"""Drawing a spot-check: stratum labels streamed in id order, allocation, a seeded draw.

A draw never holds the population: it reads the (sample id, stratum) pairs twice, in id order,
from the store. The first pass counts each stratum; the allocation then says how many to take
from each, and each stratum's generator picks *positions* within its stratum
(`rng.sample(range(n), k)`, which picks exactly the positions `rng.sample(ids, k)` would). The
second pass keeps the samples at those positions. Memory is the number of strata plus the
draw's size, whatever the dataset's, and a seed gives the same queue as the in-memory draw
it replaces.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import groupby
from operator import itemgetter
from typing import TypeVar

import numpy as np

from ..errors import ReflectionError
from ..intervals import ALL
from ..store import Store

ALLOCATIONS = ("proportional", "equal")
VERSIONS = ("original", "candidate")
T = TypeVar("T")
Labelled = Callable[[], Iterable[tuple[int, str]]]  # (sample id, stratum) in id order


def allocate(sizes: dict[str, int], total: int, how: str = "proportional") -> dict[str, int]:
    """How many to draw from each stratum: largest remainders, at least one from each if it fits."""
    if how not in ALLOCATIONS:
        raise ReflectionError(f"unknown allocation {how!r} (expected {', '.join(ALLOCATIONS)})")
    names = sorted(name for name, size in sizes.items() if size > 0)
    total = min(total, sum(sizes[name] for name in names))
    if not names or total <= 0:
        return dict.fromkeys(sizes, 0)
    weight = {name: sizes[name] if how == "proportional" else 1 for name in names}
    share = {name: total * weight[name] / sum(weight.values()) for name in names}
    counts = {name: min(sizes[name], math.floor(share[name])) for name in names}
    if total >= len(names):
        counts = {name: max(1, count) for name, count in counts.items()}
    # Hand out (or take back) the rest by largest remainder, never past a stratum's size.
    order = sorted(names, key=lambda name: (-(share[name] - math.floor(share[name])), name))
    while sum(counts.values()) != total:
        step = 1 if sum(counts.values()) < total else -1
        for name in order if step == 1 else reversed(order):
            if sum(counts.values()) == total:
                break
            if step == 1 and counts[name] < sizes[name]:
                counts[name] += 1
            elif step == -1 and counts[name] > 1:
                counts[name] -= 1
    return {name: counts.get(name, 0) for name in sizes}


def draw_labelled(
    labelled: Labelled, size: int, seed: int, allocation: str = "proportional"
) -> tuple[list[tuple[int, str]], Counter[str]]:
    """A seeded stratified draw [(sample_id, stratum)] in a seeded review order, and each
    stratum's population, from two passes over `labelled()`.

    Each stratum has its own generator (seeded by seed and stratum name), so a stratum's draw
    does not depend on the others; the same ids, labels and seed always give the same queue.
    """
    sizes: Counter[str] = Counter(label for _, label in labelled())
    counts = allocate(dict(sizes), size, allocation)
    wanted = {
        name: set(random.Random(f"{seed}:{name}").sample(range(sizes[name]), counts[name]))
        for name in sorted(sizes)
    }
    seen: Counter[str] = Counter()
    picked = []
    for sample_id, label in labelled():
        if seen[label] in wanted[label]:
            picked.append((sample_id, label))
        seen[label] += 1
    if seen != sizes:  # the dataset changed between the passes
        raise ReflectionError("the dataset changed while the spot-check was drawn: draw again")
    picked.sort()
    random.Random(f"{seed}:order").shuffle(picked)
    return picked, sizes


def draw(
    strata: dict[int, str], size: int, seed: int, allocation: str = "proportional"
) -> list[tuple[int, str]]:
    """`draw_labelled` over labels held in memory: {sample_id: stratum}."""
    ordered = sorted(strata.items())
    return draw_labelled(lambda: ordered, size, seed, allocation)[0]


def _bucket_label(value: float | None, edges: list[float]) -> str:
    if value is None:
        return "no score"
    for index, edge in enumerate(edges):
        if value < edge:
            return f"< {edge:g}" if index == 0 else f"{edges[index - 1]:g} – {edge:g}"
    return f"≥ {edges[-1]:g}"


def _quartile_edges(values: array) -> list[float]:
    if not values:
        return []
    ordered = np.sort(np.frombuffer(values, dtype=np.float64))  # 8 bytes a value, not a float
    cuts = [ordered[min(len(ordered) - 1, len(ordered) * q // 4)] for q in (1, 2, 3)]
    return sorted({float(f"{cut:.3g}") for cut in cuts})


def _joined(ids: Iterable[int], values: Iterable[tuple[int, T]]) -> Iterator[tuple[int, T | None]]:
    """Each id with its value, or None: a merge of two streams in id order."""
    rows = iter(values)
    pending = next(rows, None)
    for sample_id in ids:
        while pending is not None and pending[0] < sample_id:
            pending = next(rows, None)
        if pending is not None and pending[0] == sample_id:
            yield sample_id, pending[1]
        else:
            yield sample_id, None


def _newest(rows: Iterable[tuple[int, float]]) -> Iterator[tuple[int, float]]:
    """The last row of each sample id (rows come grouped by id, oldest first)."""
    for sample_id, group in groupby(rows, key=itemgetter(0)):
        *_, last = group
        yield sample_id, last[1]


def _labels(rows: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Each sample's names (kinds, flags) joined into one label: rows come grouped by id."""
    for sample_id, group in groupby(rows, key=itemgetter(0)):
        yield sample_id, "+".join(sorted({name for _, name in group}))


def strata_of(
    store: Store,
    dataset_id: int,
    kinds: tuple[str, ...] = (),
    stratify: str = "",
    *,
    edges: list[float] | None = None,
    version: str = "original",
) -> tuple[Labelled, dict]:
    """The population's (sample id, stratum label) in id order, as a function that reads them
    again on each call, and the settings that reproduce the labelling."""

    def ids() -> Iterator[int]:
        return store.population_stream(dataset_id, kinds)

    how, _, metric = stratify.partition(":")
    if not how:
        return (lambda: ((sid, ALL) for sid in ids())), {}
    if how == "kind":

        def by_kind() -> Iterator[tuple[int, str]]:
            joined = _joined(ids(), _labels(store.candidate_kinds_stream(dataset_id)))
            return ((sid, label or "no candidate") for sid, label in joined)

        return by_kind, {}
    if how == "flag":

        def by_flag() -> Iterator[tuple[int, str]]:
            joined = _joined(ids(), _labels(store.flag_stream(dataset_id)))
            return ((sid, label or "unflagged") for sid, label in joined)

        return by_flag, {}
    if how == "score":
        if not metric:
            raise ReflectionError("stratify by score needs a metric, e.g. score:ifd_ppl")
        if version not in VERSIONS:
            raise ReflectionError(f"unknown version {version!r} (expected original or candidate)")

        def scored() -> Iterator[tuple[int, float | None]]:
            return _joined(ids(), _newest(store.score_stream(dataset_id, metric, version)))

        if edges is None:
            edges = _quartile_edges(array("d", (v for _, v in scored() if v is not None)))
        cuts = sorted(edges)
        return (lambda: ((sid, _bucket_label(value, cuts)) for sid, value in scored())), {
            "edges": cuts,
            "version": version,
        }
    raise ReflectionError(
        f"unknown stratification {stratify!r} (expected kind, flag or score:METRIC)"
    )
