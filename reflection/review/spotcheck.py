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

import math
import random
from collections import Counter
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from ..errors import ReflectionError
from ..intervals import ALL, Estimate, combined_estimate, stratum_estimate
from ..records import CANDIDATE_KINDS, stored_id
from ..store import Store
from ..store.spotcheck import SpotCheck, SpotItem

STRATIFY = ("kind", "flag", "score")
GOOD = ("candidate", "accepted")
ALLOCATIONS = ("proportional", "equal")
VERSIONS = ("original", "candidate")
BAD_STATUSES = ("edited", "rejected")
Counts = Counter[str]  # per stratum
# Kinds an oracle (or an import) makes; human edits are made during review, not checked by it.
ORACLE_KINDS = tuple(kind for kind in CANDIDATE_KINDS if kind != "edit")
NARROWING_COLUMNS = [
    "reviewed", "stratum", "population", "drawn", "bad", "bad_rate", "bad_rate_low",
    "bad_rate_high", "bad_in_population", "bad_in_population_low", "bad_in_population_high",
    "reviewed_in_stratum", "acceptance", "acceptance_low", "acceptance_high",
]  # fmt: skip


# --- drawing ---------------------------------------------------------------------------------


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


def draw(
    strata: dict[int, str], size: int, seed: int, allocation: str = "proportional"
) -> list[tuple[int, str]]:
    """A seeded stratified random draw [(sample_id, stratum)] in a seeded review order.

    Each stratum has its own generator (seeded by seed and stratum name), so a stratum's draw
    does not depend on the others; the same ids, labels and seed always give the same queue.
    """
    by_stratum: dict[str, list[int]] = {}
    for sample_id in sorted(strata):
        by_stratum.setdefault(strata[sample_id], []).append(sample_id)
    counts = allocate({k: len(v) for k, v in by_stratum.items()}, size, allocation)
    picked = []
    for name in sorted(by_stratum):
        rng = random.Random(f"{seed}:{name}")
        picked += [(sid, name) for sid in rng.sample(by_stratum[name], counts[name])]
    picked.sort()
    random.Random(f"{seed}:order").shuffle(picked)
    return picked


def _bucket_label(value: float | None, edges: list[float]) -> str:
    if value is None:
        return "no score"
    for index, edge in enumerate(edges):
        if value < edge:
            return f"< {edge:g}" if index == 0 else f"{edges[index - 1]:g} – {edge:g}"
    return f"≥ {edges[-1]:g}"


def _quartile_edges(values: list[float]) -> list[float]:
    if not values:
        return []
    ordered = sorted(values)
    cuts = [ordered[min(len(ordered) - 1, len(ordered) * q // 4)] for q in (1, 2, 3)]
    return sorted({float(f"{cut:.3g}") for cut in cuts})


def strata_of(
    store: Store,
    dataset_id: int,
    ids: list[int],
    stratify: str = "",
    *,
    edges: list[float] | None = None,
    version: str = "original",
) -> tuple[dict[int, str], dict]:
    """The stratum label of each sample id, and the settings that reproduce the labelling."""
    how, _, metric = stratify.partition(":")
    if not how:
        return dict.fromkeys(ids, ALL), {}
    if how == "kind":
        kinds = store.candidate_kinds_by_sample(dataset_id)
        return {sid: "+".join(kinds.get(sid, [])) or "no candidate" for sid in ids}, {}
    if how == "flag":
        flags = store.flags_by_sample(dataset_id)
        return {sid: "+".join(sorted(flags.get(sid, ()))) or "unflagged" for sid in ids}, {}
    if how == "score":
        if not metric:
            raise ReflectionError("stratify by score needs a metric, e.g. score:ifd_ppl")
        if version not in VERSIONS:
            raise ReflectionError(f"unknown version {version!r} (expected original or candidate)")
        values = store.score_by_sample(dataset_id, metric, version)
        if edges is None:
            edges = _quartile_edges([values[sid] for sid in ids if sid in values])
        edges = sorted(edges)
        labels = {sid: _bucket_label(values.get(sid), edges) for sid in ids}
        return labels, {"edges": edges, "version": version}
    raise ReflectionError(
        f"unknown stratification {stratify!r} (expected kind, flag or score:METRIC)"
    )


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
    ids = store.population_ids(ds.id, kinds)
    if not ids:
        raise ReflectionError(
            f"dataset {ds.name!r} has no samples to draw from"
            + (" (none has a candidate)" if kinds else "")
        )
    labels, extra = strata_of(store, ds.id, ids, stratify, edges=edges, version=version)
    picked = draw(labels, size, seed, allocation)
    spot = SpotCheck(
        dataset_id=ds.id,
        name=name.strip(),
        seed=seed,
        size=size,
        population=len(ids),
        stratify=stratify,
        strata=dict(sorted(Counter(labels.values()).items())),
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
