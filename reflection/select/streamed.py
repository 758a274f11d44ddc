"""What `suggest` keeps while it walks a dataset a chunk at a time: its counts, and topk's
ranking as four numbers a sample (the rules themselves are in rules.py)."""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..records import EMPTY_FLAG
from .rules import ACCEPT, REJECT, Choice, Scored, check_percent, topk_choice, topk_pick

Verdicts = Iterable[tuple[int, Choice | None]]
BLOCK = 65_536  # ranked samples turned into Python ints at a time


def missing_scores(
    samples: Mapping[int, Sequence[Scored]], metrics: Iterable[str]
) -> dict[str, int]:
    """How many versions lack each metric (only metrics some version lacks).

    A version flagged empty is not counted: an empty output has no score to compute (its
    perplexities and relevance are undefined), and no rule picks it anyway.
    """
    found = {}
    for metric in metrics:
        lacking = sum(
            1 for vs in samples.values() for v in vs
            if v.get(metric) is None and EMPTY_FLAG not in v.flags
        )  # fmt: skip
        if lacking:
            found[metric] = lacking
    return found


class Counts:
    """The run's counters, added up chunk by chunk (the same as over the whole dataset)."""

    def __init__(self, metrics: Sequence[str]):
        self.metrics = list(metrics)
        self.samples = self.suggested = self.accept_original = self.accept_reflected = 0
        self.reject = self.flagged_versions = 0
        self.flags: dict[str, int] = {}
        self.missing = dict.fromkeys(self.metrics, 0)

    def versions(self, part: Mapping[int, Sequence[Scored]]) -> None:
        """Count a chunk's content flags and the versions lacking each metric."""
        for metric, n in missing_scores(part, self.metrics).items():
            self.missing[metric] += n
        for versions in part.values():
            for version in versions:
                if version.flags:
                    self.flagged_versions += 1
                    for flag in version.flags:
                        self.flags[flag] = self.flags.get(flag, 0) + 1

    def rows(self, verdicts: Verdicts, rule: str) -> Iterator[tuple[Any, ...]]:
        """The staged rows of a chunk's verdicts (`SuggestionStaging.add`), counted."""
        for sample_id, choice in verdicts:
            self.samples += 1
            if choice is None:
                yield (sample_id, None, None, None, None, None)
                continue
            self.suggested += 1
            if choice.decision == REJECT:
                self.reject += 1
            elif choice.decision == ACCEPT and choice.candidate_id:
                self.accept_reflected += 1
            elif choice.decision == ACCEPT:
                self.accept_original += 1
            yield (sample_id, choice.candidate_id or 0, rule, choice.reason, choice.confidence,
                   choice.decision)  # fmt: skip

    def counters(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "suggested": self.suggested,
            "no_suggestion": self.samples - self.suggested,
            "accept_original": self.accept_original,
            "accept_reflected": self.accept_reflected,
            "reject": self.reject,
            "flagged_versions": self.flagged_versions,
            "flags": dict(sorted(self.flags.items())),
            # Relevance is not a rule's input, but without it off-topic answers go unflagged.
            "missing": {metric: n for metric, n in self.missing.items() if n},
        }


class Ranking:
    """`rules.topk` over a dataset read a chunk at a time: each ranked sample is kept as its
    value, id, version and kind (about 30 bytes), the verdicts come once all are seen."""

    def __init__(self, metric: str, percent: float):
        check_percent(percent)
        self.metric, self.percent = metric, percent
        self.values, self.ids, self.versions = array("d"), array("q"), array("q")
        self.kinds: list[str] = []
        self.samples = 0

    def take(self, part: Mapping[int, Sequence[Scored]]) -> Verdicts:
        """Rank a chunk's samples; the verdicts of those that are not ranked (misaligned, or
        without a value) now."""
        verdicts: list[tuple[int, Choice | None]] = []
        for sample_id, versions in part.items():
            self.samples += 1
            found = topk_pick(versions, metric=self.metric)
            if found is None or isinstance(found, Choice):
                verdicts.append((sample_id, found))
                continue
            value = found.get(self.metric)
            assert value is not None
            self.values.append(value)
            self.ids.append(sample_id)
            self.versions.append(found.candidate_id or 0)
            self.kinds.append(sys.intern(found.kind))
        return verdicts

    def choices(self) -> Verdicts:
        """The ranked samples' verdicts, as `rules.topk` gives them."""
        import numpy as np

        keep = math.floor(self.percent / 100 * self.samples)
        values = np.frombuffer(self.values, dtype=np.float64)
        order = np.lexsort((np.frombuffer(self.ids, dtype=np.int64), -values))
        ranked = len(order)
        for start in range(0, ranked, BLOCK):
            for rank, i in enumerate(order[start : start + BLOCK].tolist(), start=start + 1):
                pick = Scored(self.versions[i] or None, self.kinds[i])
                choice = topk_choice(pick, self.values[i], rank, ranked, keep, self.percent,
                                     self.metric)  # fmt: skip
                yield self.ids[i], choice
