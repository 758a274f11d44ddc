"""Assignment with overlap: each sample goes to `overlap` distinct reviewers, balanced.

Reviewers are dealt like cards. The deck is a stream of *rounds*, each a seeded shuffle of
every reviewer, and each sample takes the next `overlap` of them. Every round gives each
reviewer one sample, so their loads never differ by more than one. Where a sample's hand
straddles two rounds, the reviewers already in it go to the back of the new round, so no
sample gets anyone twice (and the round still holds everyone once). Shuffling every round
mixes the pairs: every two reviewers share samples, which Cohen's kappa per pair needs.
This is "the least loaded reviewers, ties drawn at random", in O(1) a sample, with the
rounds drawn many at a time by numpy.

Reviewers who start with unequal loads (a second run, a reviewer added later) first catch
up: while loads differ by more than one, each sample goes to the least loaded (ties drawn
at random); then one round of those one below the rest levels them, and rounds follow.

`Dealer` is pure and deterministic given the seed. `assign_dataset` streams: it reads the
samples nobody is assigned yet, CHUNK ids at a time in id order, and commits each chunk's
assignments, so a million samples take flat memory, and a run that stops half-way is
finished by running it again (assigned samples are left as they are). It starts from the
reviewers' active assignments, so a later run evens out loads.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from ..errors import NotFoundError, ReflectionError
from ..store import Store

CHUNK = 50_000


def reviewer_names(names: Iterable[str]) -> list[str]:
    """Names trimmed and checked: at least one, none empty, no repeats (order kept)."""
    cleaned = [name.strip() for name in names]
    if not cleaned or any(not name for name in cleaned):
        raise ReflectionError("reviewers: give one or more names, none of them empty")
    repeated = sorted({name for name in cleaned if cleaned.count(name) > 1})
    if repeated:
        raise ReflectionError(f"reviewers: {', '.join(repeated)} given more than once")
    return cleaned


def parse_names(text: str) -> list[str]:
    """Comma-separated names, trimmed, empty ones dropped (order kept)."""
    return [name.strip() for name in text.split(",") if name.strip()]


class Dealer:
    """Deals reviewers to samples, `overlap` distinct ones each, balanced across them."""

    def __init__(
        self,
        reviewers: Sequence[str],
        overlap: int,
        seed: int = 0,
        loads: Mapping[str, int] | None = None,
    ):
        self.reviewers = reviewer_names(reviewers)
        if not 1 <= overlap <= len(self.reviewers):
            raise ReflectionError(
                f"overlap {overlap}: must be between 1 and the number of reviewers "
                f"({len(self.reviewers)})"
            )
        self.overlap = overlap
        self.rng = random.Random(seed)
        self.shuffles = np.random.default_rng(seed)
        self.names = np.array(self.reviewers, dtype=object)
        found = loads or {}
        self.loads = [found.get(r, 0) for r in self.reviewers]  # kept while catching up
        # What is left of the round being dealt: reviewer indexes, next first.
        self.pending: list[int] = []
        if not self._catching_up():
            self._level()

    def _catching_up(self) -> bool:
        return max(self.loads) - min(self.loads) > 1

    def _least_loaded(self) -> list[int]:
        """A hand while loads differ by more than one: the least loaded, ties drawn at random."""
        ranked = sorted(range(len(self.loads)), key=lambda r: (self.loads[r], self.rng.random()))
        hand = ranked[: self.overlap]
        for reviewer in hand:
            self.loads[reviewer] += 1
        if not self._catching_up():
            self._level()
        return hand

    def _level(self) -> None:
        """The first round: only those one below the others (everyone when all are level)."""
        low = min(self.loads)
        self.pending = [r for r, load in enumerate(self.loads) if load == low]
        self.rng.shuffle(self.pending)

    def hands(self, n: int) -> np.ndarray:
        """The next `n` samples' reviewers, as indexes into `reviewers`: shape (n, overlap)."""
        o, k = self.overlap, len(self.reviewers)
        caught_up: list[list[int]] = []
        while len(caught_up) < n and self._catching_up():
            caught_up.append(self._least_loaded())
        need = (n - len(caught_up)) * o
        stream = self.pending  # starts where a hand starts
        rounds = -(-max(0, need - len(stream)) // k)
        # Many rounds at once: each row a random permutation of the reviewers.
        for order in self.shuffles.random((rounds, k)).argsort(axis=1).tolist():
            h = len(stream) % o  # reviewers already in the hand this round completes
            if h:
                hand = stream[-h:]
                if any(r in hand for r in order[: o - h]):
                    order = [r for r in order if r not in hand] + [r for r in order if r in hand]
            stream.extend(order)
        self.pending = stream[need:]
        dealt = np.array(stream[:need], dtype=np.int64).reshape(-1, o)
        if caught_up:
            return np.concatenate([np.array(caught_up, dtype=np.int64).reshape(-1, o), dealt])
        return dealt

    def pairs(self, sample_ids: Sequence[int]) -> list[tuple[int, str]]:
        """(sample id, reviewer) for the next samples, `overlap` per sample, in order."""
        hands = self.hands(len(sample_ids))
        ids = np.repeat(np.asarray(sample_ids, dtype=np.int64), self.overlap).tolist()
        return list(zip(ids, self.names[hands.ravel()].tolist(), strict=True))

    def deal(self, sample_ids: Iterable[int]) -> Iterator[tuple[int, str]]:
        """(sample id, reviewer) pairs, `overlap` per sample (dealt CHUNK samples at a time)."""
        ids = iter(sample_ids)
        while chunk := list(islice(ids, CHUNK)):
            yield from self.pairs(chunk)


@dataclass
class AssignResult:
    dataset: str
    samples: int  # newly assigned samples
    assignments: int
    loads: dict[str, int] = field(default_factory=dict)  # active assignments per reviewer


def assign_dataset(
    store: Store,
    dataset: str | int,
    reviewers: Sequence[str],
    overlap: int,
    *,
    limit: int | None = None,
    seed: int = 0,
    actor: str = "",
) -> AssignResult:
    """Assign the dataset's unassigned samples (the first `limit` of them, in id order)."""
    ds = store.dataset(dataset)
    if limit is not None and limit < 0:
        raise ReflectionError(f"limit {limit}: must be 0 or more")
    dealer = Dealer(reviewers, overlap, seed, store.assignment_loads(ds.id))
    after, samples, pairs_written = 0, 0, 0
    while limit is None or samples < limit:
        want = CHUNK if limit is None else min(CHUNK, limit - samples)
        ids = store.unassigned_sample_ids(ds.id, after, want)
        if not ids:
            break
        pairs_written += store.add_assignments(ds.id, dealer.pairs(ids))
        samples += len(ids)
        after = ids[-1]
    store.add_audit_event(
        actor,
        "assign",
        ds.name,
        dataset_id=ds.id,
        detail={
            "reviewers": dealer.reviewers,
            "overlap": overlap,
            "seed": seed,
            "limit": limit,
            "samples": samples,
            "assignments": pairs_written,
        },
    )
    return AssignResult(ds.name, samples, pairs_written, store.assignment_loads(ds.id))


@dataclass
class ReassignResult:
    dataset: str
    reviewer: str
    moved: int
    unplaced: int  # open samples every new reviewer already had: left with `reviewer`
    to: dict[str, int] = field(default_factory=dict)  # samples each new reviewer received


def reassign(
    store: Store,
    dataset: str | int,
    reviewer: str,
    to: Sequence[str],
    *,
    seed: int = 0,
    actor: str = "",
) -> ReassignResult:
    """Give `reviewer`'s open work (assigned, not decided) to the reviewers `to`.

    Each open sample goes to the least loaded of `to` not already assigned it (ties broken
    by a seeded draw), so no sample gains a reviewer. What `reviewer` decided stays theirs.
    """
    ds = store.dataset(dataset)
    known = store.assigned_reviewers(ds.id)
    if reviewer not in known:
        raise NotFoundError(
            f"{reviewer!r} has no assignment in dataset {ds.name!r}"
            f" (reviewers: {', '.join(known) or 'none yet'})"
        )
    targets = [name for name in reviewer_names(to) if name != reviewer]
    if not targets:
        raise ReflectionError(f"reassign: name someone other than {reviewer!r} to take the work")
    open_ids = store.open_assignments(ds.id, reviewer)
    loads = store.assignment_loads(ds.id)
    load = {name: loads.get(name, 0) for name in targets}
    received = dict.fromkeys(targets, 0)
    rng = random.Random(seed)
    moved = unplaced = 0
    for start in range(0, len(open_ids), CHUNK):
        chunk = open_ids[start : start + CHUNK]
        taken = store.assignees(ds.id, chunk, targets)
        moves = []
        for sample_id in chunk:
            eligible = [t for t in targets if t not in taken.get(sample_id, ())]
            if not eligible:
                unplaced += 1
                continue
            pick = min(eligible, key=lambda name: (load[name], rng.random()))
            load[pick] += 1
            received[pick] += 1
            moves.append((sample_id, reviewer, pick))
        moved += store.move_assignments(ds.id, moves)
    store.add_audit_event(
        actor,
        "reassign",
        reviewer,
        dataset_id=ds.id,
        detail={"to": targets, "moved": moved, "unplaced": unplaced, "seed": seed},
    )
    return ReassignResult(ds.name, reviewer, moved, unplaced, received)


def progress(store: Store, dataset: str | int) -> list[dict]:
    """Per reviewer: assigned, decided, skipped, open, and the share decided (0 to 1)."""
    rows = store.reviewer_progress(store.dataset(dataset).id)
    for row in rows:
        row["done"] = row["decided"] / row["assigned"] if row["assigned"] else 0.0
    return rows
