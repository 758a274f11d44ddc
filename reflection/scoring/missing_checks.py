"""Content checks for the versions a walk finds without them, computed on the way (`suggest`).

A rule must never judge a version whose flags are unknown, so `suggest` checks every version
that has no content checks yet. It used to run the whole text family first (`score_text`):
about 12 score rows a version (lengths, token counts, diff ratios, subject overlap and each
check's value), ~3.5 KB a version with the score indexes: ~107 GB for the 30M versions of a
10M-sample store, to read one flag list a version. A version checked here gets one row: the
checks' score (CHECKS_METRIC, text scorer), whose detail carries the flags and their reasons
that the app shows and counts, exactly as `score_text` writes it. `score --metric text` still
adds the statistics (its marker asks for both).

Texts are read only for the chunks where something is missing: a walk of a store whose
versions are all checked reads no text at all (it used to read every text once to count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from ..records import CHECKS_METRIC, Score
from .check_pool import CheckJob, CheckPool, Pending
from .checks import check_scores
from .text import SCORER
from .versions import candidate_version

SAVE_EVERY = 20_000  # checks' rows kept before they are saved (one commit each)

Key = tuple[int, int | None]


class _Version(Protocol):  # select.rules.Scored, which this layer may not import
    @property
    def candidate_id(self) -> int | None: ...

    @property
    def flags(self) -> Mapping[str, str]: ...


# The versions a batch checks, and their checks on their way.
Batch = tuple[list[tuple[int, "_Version"]], Pending]


class MissingChecks:
    """Checks versions without checks (on `pool`'s processes), saves their rows under
    `run_id`, and puts each flag on the version it was handed. Call `save()` at the end (rows
    are kept SAVE_EVERY at a time)."""

    def __init__(
        self, store, dataset_id: int, run_id: int | None, pool: CheckPool | None = None
    ) -> None:
        self.store, self.dataset_id, self.run_id = store, dataset_id, run_id
        self.pool = pool or CheckPool()
        self.checked = 0
        self._pending: list[Score] = []

    def start(self, part: Mapping[int, Sequence[_Version]], unchecked: set[Key]) -> Batch:
        """Read the texts of `part`'s versions whose keys are in `unchecked` and start their
        checks on the pool; `finish` adds the flags."""
        versions: list[tuple[int, _Version]] = []
        jobs: list[CheckJob] = []
        if not unchecked:
            return versions, self.pool.submit(jobs)
        sample_ids = sorted({sample_id for sample_id, _ in unchecked})
        samples = {s.id: s for s in self.store.samples(self.dataset_id, sample_ids)}
        candidates = self.store.candidates_for_samples(sample_ids)
        for sample_id in sample_ids:
            sample = samples[sample_id]
            by_id = {c.id: c for c in candidates.get(sample_id, [])}
            for version in part[sample_id]:
                if (sample_id, version.candidate_id) not in unchecked:
                    continue
                if version.candidate_id is None:
                    job = CheckJob(sample.output)
                else:
                    found = candidate_version(sample, by_id[version.candidate_id])
                    if found is None:  # no text at all: nothing to check, as in score_text
                        continue
                    job = CheckJob(found.output, sample.output, found.status, found.raw)
                versions.append((sample_id, version))
                jobs.append(job)
        return versions, self.pool.submit(jobs)

    def finish(self, batch: Batch) -> None:
        """Put a started batch's flags on its versions and keep their rows."""
        versions, pending = batch
        for (sample_id, version), checks in zip(versions, pending.result(), strict=True):
            version.flags.update(checks.flags)  # type: ignore[attr-defined]
            rows = check_scores(sample_id, version.candidate_id, checks, self.run_id, SCORER)
            self._pending += [s for s in rows if s.metric == CHECKS_METRIC]
            self.checked += 1
        if len(self._pending) >= SAVE_EVERY:
            self.save()

    def save(self) -> None:
        """Save the rows kept so far."""
        if self._pending:
            self.store.put_scores(self._pending)
            self._pending = []
