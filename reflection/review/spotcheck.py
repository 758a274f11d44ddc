"""Spot-checks: review a seeded random sample of a large set and estimate the whole from it.

A spot-check draws `size` samples from a dataset (all of it, or the samples with candidates),
optionally stratified (by candidate kind, flag or a score bucket), and stores them as a review
queue of its own. Reviewers decide those samples on the Review page as usual. A reviewed sample
is *good* when accepting the set as it stands would keep it unchanged:

- `good="candidate"` (an oracle spot-check): the reviewer accepted one of its candidates;
  choosing the original, editing or rejecting all mean the oracle's version was bad.
- `good="accepted"` (a data spot-check): the reviewer accepted any version; an edit or a
  rejection means the sample was bad.

Skipped and undecided samples do not count, and neither does a decision made by a bulk rule
(it is not a verdict).

The maths lives in `reflection.intervals` (Wilson score intervals, per stratum and combined).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from ..errors import ReflectionError
from ..intervals import ALL, Estimate, combined_estimate, stratum_estimate
from ..records import CANDIDATE_KINDS, stored_id
from ..store import Store
from ..store.spotcheck import SpotCheck, SpotItem
from .spot_draw import ALLOCATIONS, VERSIONS, draw_labelled, strata_of

STRATIFY = ("kind", "flag", "score")
GOOD = ("candidate", "accepted")
BAD_STATUSES = ("edited", "rejected")
Counts = Counter[str]  # per stratum
# Kinds an oracle (or an import) makes; human edits are made during review, not checked by it.
ORACLE_KINDS = tuple(kind for kind in CANDIDATE_KINDS if kind != "edit")
NARROWING_COLUMNS = [
    "reviewed", "stratum", "population", "drawn", "bad", "bad_rate", "bad_rate_low",
    "bad_rate_high", "bad_in_population", "bad_in_population_low", "bad_in_population_high",
    "reviewed_in_stratum", "acceptance", "acceptance_low", "acceptance_high",
]  # fmt: skip


def create_spotcheck(
    store: Store,
    dataset: str | int,
    name: str,
    *,
    size: int = 50,
    seed: int = 0,
    stratify: str = "",
    good: str | None = None,
    kinds: tuple[str, ...] = (),
    allocation: str = "proportional",
    edges: list[float] | None = None,
    version: str = "original",
    annotator: str = "",
) -> SpotCheck:
    """Draw a seeded random sample of a dataset and store it as the review queue `name`."""
    ds = store.dataset(dataset)
    if not name.strip():
        raise ReflectionError("a spot-check needs a name")
    if size < 1:
        raise ReflectionError(f"a spot-check needs at least one sample, not {size}")
    unknown = sorted(set(kinds) - set(CANDIDATE_KINDS))
    if unknown:
        raise ReflectionError(f"unknown candidate kind {unknown[0]!r}")
    if allocation not in ALLOCATIONS:
        raise ReflectionError(
            f"unknown allocation {allocation!r} (expected {', '.join(ALLOCATIONS)})"
        )
    if version not in VERSIONS:
        raise ReflectionError(f"unknown version {version!r} (expected {', '.join(VERSIONS)})")
    if good is None:
        good = "candidate" if kinds or store.has_candidates(ds.id) else "accepted"
    if good not in GOOD:
        raise ReflectionError(f"unknown verdict {good!r} (expected {', '.join(GOOD)})")
    if good == "candidate" and not kinds:
        kinds = ORACLE_KINDS  # an oracle spot-check draws from samples that have candidates
    if next(store.population_stream(ds.id, kinds), None) is None:
        raise ReflectionError(
            f"dataset {ds.name!r} has no samples to draw from"
            + (" (none has a candidate)" if kinds else "")
        )
    labelled, extra = strata_of(store, ds.id, kinds, stratify, edges=edges, version=version)
    picked, sizes = draw_labelled(labelled, size, seed, allocation)
    spot = SpotCheck(
        dataset_id=ds.id,
        name=name.strip(),
        seed=seed,
        size=size,
        population=sum(sizes.values()),
        stratify=stratify,
        strata=dict(sorted(sizes.items())),
        settings={
            "good": good,
            "kinds": list(kinds) if tuple(kinds) != ORACLE_KINDS else ["any"],
            "allocation": allocation,
            **extra,
        },
        annotator=annotator,
    )
    return store.add_spotcheck(spot, picked)


# --- reading a spot-check back -----------------------------------------------------------------


def spotcheck_queue(
    store: Store, name: str | int, dataset: str | int | None = None, *, pending: bool = False
) -> list[int]:
    """The spot-check's sample ids in review order (with `pending`, only those without a verdict)."""
    dataset_id = store.dataset(dataset).id if dataset is not None else None
    spot = store.spotcheck(name, dataset_id)
    if not pending:
        return store.spotcheck_sample_ids(stored_id(spot))
    return [
        item.sample_id
        for item in store.spotcheck_items(stored_id(spot))
        if _verdict(item, "") is None
    ]


def _verdict(item: SpotItem, good: str) -> bool | None:
    """True if bad, False if good, None if it does not count (yet)."""
    if item.status is None or item.status == "skipped" or item.bulk:
        return None
    if item.status in BAD_STATUSES:
        return True
    return good == "candidate" and item.candidate_id is None


def _estimates(spot: SpotCheck, drawn: Counts, reviewed: Counts, bad: Counts) -> list[Estimate]:
    return [
        stratum_estimate(name, size, drawn[name], reviewed[name], bad[name])
        for name, size in spot.strata.items()
    ]


def _tally(spot: SpotCheck, items: list[SpotItem]) -> tuple[Counts, Counts, Counts]:
    """Drawn, reviewed and bad counts per stratum."""
    good = spot.settings.get("good", "accepted")
    drawn = Counter(item.stratum for item in items)
    reviewed: Counts = Counter()
    bad: Counts = Counter()
    for item in items:
        verdict = _verdict(item, good)
        if verdict is not None:
            reviewed[item.stratum] += 1
            bad[item.stratum] += verdict
    return drawn, reviewed, bad


@dataclass
class SpotCheckReport:
    """A spot-check with its overall estimate and, when stratified, one per stratum."""

    spotcheck: SpotCheck
    overall: Estimate
    strata: list[Estimate]

    def as_dict(self) -> dict:
        spot = self.spotcheck
        return {
            "name": spot.name,
            "seed": spot.seed,
            "size": spot.size,
            "stratify": spot.stratify,
            "good": spot.settings.get("good"),
            "created_at": spot.created_at,
            "overall": self.overall.as_dict(),
            # One stratum says what "overall" says: listed only when there are several.
            "strata": [s.as_dict() for s in self.strata] if len(self.strata) > 1 else [],
        }


def report(store: Store, name: str | int, dataset: str | int | None = None) -> SpotCheckReport:
    """Where a spot-check stands: the bad share with its interval, overall and per stratum."""
    dataset_id = store.dataset(dataset).id if dataset is not None else None
    spot = store.spotcheck(name, dataset_id)
    strata = _estimates(spot, *_tally(spot, store.spotcheck_items(stored_id(spot))))
    return SpotCheckReport(spot, combined_estimate(strata), strata)


def reports(store: Store, dataset_id: int | None = None) -> list[SpotCheckReport]:
    """Every spot-check's report (of one dataset, or of all)."""
    return [report(store, stored_id(spot)) for spot in store.spotchecks(dataset_id)]


def narrowing(store: Store, name: str | int, dataset: str | int | None = None) -> pd.DataFrame:
    """How the estimate narrows as reviews accumulate, as data for a chart.

    One row per review counted, in decision order (`reviewed` = verdicts so far), for the
    whole set (stratum "all"); a stratified spot-check also gets a row per stratum reviewed so
    far. Columns: NARROWING_COLUMNS (bad share and implied bad count with 95 % bounds, and the
    acceptance rate with its bounds).
    """
    dataset_id = store.dataset(dataset).id if dataset is not None else None
    spot = store.spotcheck(name, dataset_id)
    items = store.spotcheck_items(stored_id(spot))
    good = spot.settings.get("good", "accepted")
    decided = sorted(
        (item for item in items if _verdict(item, good) is not None),
        key=lambda item: (item.decided_at, item.rank),
    )
    drawn = Counter(item.stratum for item in items)
    reviewed: Counts = Counter()
    bad: Counts = Counter()
    rows = []
    for count, item in enumerate(decided, start=1):
        reviewed[item.stratum] += 1
        bad[item.stratum] += _verdict(item, good) is True  # decided: a verdict
        strata = _estimates(spot, drawn, reviewed, bad)
        shown = [combined_estimate(strata)]
        if spot.stratify:
            shown += [s for s in strata if s.reviewed]
        for estimate in shown:
            row = estimate.as_dict()
            del row["summary"], row["reviewed"]
            accept = estimate.acceptance or (None, None, None)
            rows.append(
                {
                    "reviewed": count,
                    **row,
                    "reviewed_in_stratum": estimate.reviewed,
                    "acceptance": accept[0],
                    "acceptance_low": accept[1],
                    "acceptance_high": accept[2],
                }
            )
    return pd.DataFrame(rows, columns=NARROWING_COLUMNS)


def delete_spotcheck(store: Store, name: str | int, dataset: str | int | None = None) -> None:
    """Forget a spot-check's queue (the decisions made through it stay)."""
    dataset_id = store.dataset(dataset).id if dataset is not None else None
    store.delete_spotcheck(stored_id(store.spotcheck(name, dataset_id)))


def spotcheck_stats(store: Store, dataset_id: int | None = None) -> dict[str, dict]:
    """Each spot-check's report as plain data, keyed by name (for `reflection stats`)."""
    found = {}
    for spot in store.spotchecks(dataset_id):
        key = spot.name if spot.name not in found else f"{spot.name} (dataset {spot.dataset_id})"
        found[key] = report(store, stored_id(spot)).as_dict()
    return found


def stats_lines(stats: dict[str, dict]) -> list[tuple[str, str]]:
    """(name, sentence) per spot-check, with a line per stratum when stratified."""
    lines = []
    for name, data in stats.items():
        lines.append((name, data["overall"]["summary"]))
        if len(data["strata"]) > 1:
            lines += [(f"{name} [{s['stratum']}]", s["summary"]) for s in data["strata"]]
    return lines


def narrowing_figure(frame: pd.DataFrame, title: str = "") -> go.Figure:
    """The implied number of bad samples, with its 95 % band, against samples reviewed."""
    whole = frame[frame["stratum"] == ALL]
    population = int(whole["population"].iloc[0]) if not whole.empty else 0
    figure = go.Figure(
        [
            go.Scatter(x=whole["reviewed"], y=whole["bad_in_population_high"],
                       line={"width": 0}, showlegend=False, hoverinfo="skip"),
            go.Scatter(x=whole["reviewed"], y=whole["bad_in_population_low"], fill="tonexty",
                       line={"width": 0}, name="95 % interval"),
            go.Scatter(x=whole["reviewed"], y=whole["bad_in_population"],
                       name="bad samples (estimate)"),
        ]
    )  # fmt: skip
    figure.update_layout(
        title=title or None, height=300, margin={"t": 40 if title else 10, "b": 10},
        xaxis_title="samples reviewed", yaxis_title=f"bad samples of {population:,}",
    )  # fmt: skip
    return figure


def narrowing_figures(store: Store, dataset_id: int) -> list[go.Figure]:
    """One narrowing chart per spot-check of the dataset that has reviews (for the dashboard)."""
    figures = []
    for spot in store.spotchecks(dataset_id):
        frame = narrowing(store, stored_id(spot))
        if not frame.empty:
            figures.append(narrowing_figure(frame, f"Spot-check {spot.name}: bad samples implied"))
    return figures
