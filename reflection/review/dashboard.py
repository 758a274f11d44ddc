"""What the dashboard shows, as small data frames, for one dataset (`figures.py` draws them).

The store aggregates (histogram bins, counts per bucket, a thinned set of scatter points), so
each frame has at most a few hundred rows whatever the dataset's size; figures are built from
those frames. Nothing here imports streamlit: the page caches `dashboard_data` keyed on the
dataset and `Store.version()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..records import (
    DERIVED_FLAGS,
    IFD_METRIC,
)
from ..store import Store

# Shown first among the score histograms when present: IFD, r-IFD, judge ratings, lengths.
PREFERRED_METRICS = ("ifd_ppl", "rifd_ppl", "judge", "words_output", "drift", "words_instruction")
BINS = 30
SCATTER_POINTS = 2000
# Past this many samples, distributions are drawn from an even thinning of the dataset.
HISTOGRAM_SAMPLES = 10_000


@dataclass
class DashboardData:
    """Every frame the dashboard draws, for one dataset."""

    status: dict[str, int]
    progress: pd.DataFrame
    annotators: pd.DataFrame
    histograms: pd.DataFrame
    shift: pd.DataFrame
    shift_points: pd.DataFrame
    acceptance: pd.DataFrame
    flags: pd.DataFrame
    metrics: list[str] = field(default_factory=list)


def _bucket_chars(first: str | None, last: str | None) -> int:
    """Hours when the decisions span under three days, minutes under three hours, else days."""
    if not first or not last:
        return 10
    span = pd.Timestamp(last) - pd.Timestamp(first)
    if span < pd.Timedelta(hours=3):
        return 16
    if span < pd.Timedelta(days=3):
        return 13
    return 10


def progress(store: Store, dataset_id: int) -> pd.DataFrame:
    """Decided samples per time bucket and status, with the running total of all decided."""
    first, last = store.decided_span(dataset_id)
    rows = store.decided_over_time(dataset_id, _bucket_chars(first, last))
    frame = pd.DataFrame(rows, columns=["bucket", "status", "n"])
    if frame.empty:
        return frame.assign(time=pd.Series(dtype="datetime64[ns, UTC]"), decided=0)
    frame["time"] = pd.to_datetime(frame["bucket"], utc=True, format="ISO8601")
    totals = frame.groupby("time")["n"].sum().cumsum().rename("decided")
    return frame.merge(totals, left_on="time", right_index=True)


def annotators(store: Store, dataset_id: int) -> pd.DataFrame:
    """Decisions in force per annotator and status."""
    frame = pd.DataFrame(
        store.decisions_by_annotator(dataset_id), columns=["annotator", "status", "n"]
    )
    frame["annotator"] = frame["annotator"].replace("", "(unnamed)")
    return frame


def _chosen_metrics(present: list[str], metrics: list[str] | None) -> list[str]:
    if metrics is not None:
        return [m for m in metrics if m in present]
    preferred = [m for m in PREFERRED_METRICS if m in present]
    return preferred[:4] or present[:4]


def _every(store: Store, dataset_id: int, target: int) -> int:
    """Thinning step so about `target` samples take part (1 for datasets that small)."""
    return max(1, -(-store.count_samples(dataset_id) // target))


def score_values(store: Store, dataset_id: int, metrics: list[str], every: int = 1) -> pd.DataFrame:
    """Every value of `metrics` (each scorer) on samples whose position is a multiple of
    `every`, with the version it belongs to ("original" or the candidate's kind)."""
    ids = store.thinned_ids(dataset_id, every)
    kinds = store.candidate_kinds(ids)
    parts = []
    for metric, scorer in store.metric_scorers():
        if metric not in metrics:
            continue
        rows = store.thinned_scores(ids, metric, scorer)
        if rows:
            frame = pd.DataFrame(rows, columns=["sample_id", "candidate_id", "value"])
            parts.append(frame.assign(metric=metric, scorer=scorer))
    if not parts:
        return pd.DataFrame(columns=["sample_id", "candidate_id", "value", "metric", "scorer",
                                     "version"])  # fmt: skip
    frame = pd.concat(parts, ignore_index=True)
    frame["version"] = frame["candidate_id"].map(kinds).fillna("original")
    frame.loc[frame["candidate_id"] == 0, "version"] = "original"
    return frame


def _binned(values: pd.Series, bins: int) -> tuple[pd.Series, float, float]:
    lo, hi = float(values.min()), float(values.max())
    width = (hi - lo) / bins if hi > lo else 1.0
    index = np.clip(np.floor((values.to_numpy() - lo) / width), 0, bins - 1).astype(int)
    return pd.Series(index, index=values.index), lo, width


def histograms(
    store: Store,
    dataset_id: int,
    metrics: list[str] | None = None,
    bins: int = BINS,
    values: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Binned score distributions, originals beside each candidate kind; and all metric names.

    Past HISTOGRAM_SAMPLES samples, every k-th sample is counted (the `every` column says k).
    """
    present = list(dict.fromkeys(metric for metric, _ in store.metric_scorers()))
    chosen = _chosen_metrics(present, metrics)
    every = _every(store, dataset_id, HISTOGRAM_SAMPLES)
    if values is None:
        values = score_values(store, dataset_id, chosen, every)
    parts = []
    for (metric, scorer), rows in values.groupby(["metric", "scorer"], sort=True):
        if metric not in chosen:
            continue
        index, lo, width = _binned(rows["value"], bins)
        frame = rows.assign(bin=index).groupby(["version", "bin"]).size().rename("n")
        frame = frame.reset_index().assign(metric=metric, scorer=scorer)
        frame["lo"] = lo + frame["bin"] * width
        frame["hi"] = frame["lo"] + width
        # Shares, so originals and a kind with fewer scored versions compare fairly.
        frame["share"] = frame["n"] / frame.groupby("version")["n"].transform("sum")
        frame["every"] = every
        parts.append(frame)
    columns = ["metric", "scorer", "version", "bin", "lo", "hi", "n", "share", "every"]
    frame = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    return frame, present


def shift(
    store: Store,
    dataset_id: int,
    metric: str = IFD_METRIC,
    bins: int = BINS,
    values: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per candidate: its `metric` minus the original's, binned per kind; and scatter points.

    Past HISTOGRAM_SAMPLES samples every k-th sample takes part; at most SCATTER_POINTS points.
    """
    columns = ["kind", "bin", "lo", "hi", "n", "lower", "every"]
    points_columns = ["sample_id", "kind", "original", "candidate"]
    every = _every(store, dataset_id, HISTOGRAM_SAMPLES)
    if values is None:
        values = score_values(store, dataset_id, [metric], every)
    rows = values[values["metric"] == metric]
    if rows.empty:
        return pd.DataFrame(columns=columns), pd.DataFrame(columns=points_columns)
    # The scorer with the most values, e.g. the student model used for most of the dataset.
    rows = rows[rows["scorer"] == rows["scorer"].value_counts().idxmax()]
    originals = rows[rows["candidate_id"] == 0].set_index("sample_id")["value"]
    candidates = rows[rows["candidate_id"] != 0]
    pairs = pd.DataFrame(
        {
            "sample_id": candidates["sample_id"].to_numpy(),
            "kind": candidates["version"].to_numpy(),
            "original": originals.reindex(candidates["sample_id"]).to_numpy(),
            "candidate": candidates["value"].to_numpy(),
        }
    ).dropna(subset=["original"])
    if pairs.empty:
        return pd.DataFrame(columns=columns), pairs
    delta = pairs["candidate"] - pairs["original"]
    index, lo, width = _binned(delta, bins)
    binned = pairs.assign(bin=index, lower=delta < 0)
    frame = (
        binned.groupby(["kind", "bin"])
        .agg(n=("sample_id", "size"), lower=("lower", "sum"))
        .reset_index()
    )
    frame["lo"] = lo + frame["bin"] * width
    frame["hi"] = frame["lo"] + width
    frame["every"] = every
    step = max(1, -(-len(pairs) // SCATTER_POINTS))
    return frame[columns], pairs.iloc[::step].reset_index(drop=True)


def acceptance(store: Store, dataset_id: int) -> pd.DataFrame:
    """Per version kind: decided samples offering it, how many took it, and the rate."""
    frame = pd.DataFrame(
        store.acceptance_by_kind(dataset_id), columns=["kind", "offered", "accepted"]
    )
    frame["rate"] = (frame["accepted"] / frame["offered"].where(frame["offered"] > 0)).fillna(0.0)
    return frame


def flags(store: Store, dataset_id: int) -> pd.DataFrame:
    """Samples carrying each flag (as the review queue defines them) and each import flag:
    from the counts the store keeps as it writes, not a scan of every score."""
    counts = store.flag_counts(dataset_id)
    rows = [{"flag": flag, "n": counts[flag], "from": "review"} for flag in DERIVED_FLAGS]
    rows += [
        {"flag": flag, "n": n, "from": "import"}
        for flag, n in sorted(store.import_flag_counts(dataset_id).items())
    ]
    return pd.DataFrame(rows, columns=["flag", "n", "from"])


def dashboard_data(
    store: Store, dataset_id: int, metrics: list[str] | None = None, shift_metric: str = IFD_METRIC
) -> DashboardData:
    """Everything the dashboard draws for one dataset."""
    # One read of the thinned scores serves both the histograms and the shift.
    present = list(dict.fromkeys(metric for metric, _ in store.metric_scorers()))
    wanted = {*_chosen_metrics(present, metrics), shift_metric}
    values = score_values(
        store, dataset_id, sorted(wanted), _every(store, dataset_id, HISTOGRAM_SAMPLES)
    )
    hist, all_metrics = histograms(store, dataset_id, metrics, values=values)
    shift_bins, shift_points = shift(store, dataset_id, shift_metric, values=values)
    return DashboardData(
        status=store.status_counts(dataset_id),
        progress=progress(store, dataset_id),
        annotators=annotators(store, dataset_id),
        histograms=hist,
        shift=shift_bins,
        shift_points=shift_points,
        acceptance=acceptance(store, dataset_id),
        flags=flags(store, dataset_id),
        metrics=all_metrics,
    )


# --- figures ---------------------------------------------------------------------------------
# Built with graph_objects rather than plotly.express: express spends tens of milliseconds a
# figure on its own bookkeeping, which adds up to most of a warm dashboard run.
