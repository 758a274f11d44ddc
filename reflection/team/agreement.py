"""How much reviewers agree, on the samples two or more of them decided.

Each reviewer's decision in force on a sample is one rating in one of these categories: the
original accepted; a candidate accepted (which one counts: accepting #3 and #5 disagree);
edited; rejected. Skips are no rating. On the items (samples) with two or more ratings:

- percent: observed agreement, the share of agreeing pairs of ratings on an item, averaged
  over items (for two reviewers, the share of items they agree on);
- Cohen's kappa for each pair of reviewers, on the items both rated (scikit-learn);
- Fleiss' kappa (statsmodels) on the items rated by the most usual number of reviewers,
  since it needs the same number of ratings on every item; Krippendorff's alpha (krippendorff,
  nominal) on every item, as it allows missing ratings; each with a bootstrap 95% interval
  (items resampled with replacement, a seeded numpy generator, percentile interval);
- each reviewer's confusion table against the consensus: the adjudication where there is
  one, else the category more than half the ratings share (items with neither are left out).
  Its labels are the four kinds (original, candidate, edited, rejected); `agree` counts exact
  matches, so accepting another candidate than the consensus's is a disagreement there.

A statistic that is undefined on the data (every rating the same, a single item) is None.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from ..store import Store
from ..store.tracks import ADJUDICATION

KINDS = ("original", "candidate", "edited", "rejected")
BOOTSTRAP = 1000

Ratings = Mapping[Any, Mapping[str, str]]  # item -> reviewer -> category


def category(status: str, candidate_id: int | None) -> str | None:
    """A decision's category: "original", "candidate 12", "edited", "rejected" (None: skipped)."""
    if status == "accepted":
        return f"candidate {candidate_id}" if candidate_id else "original"
    if status in ("edited", "rejected"):
        return status
    return None


def kind_of(cat: str) -> str:
    return "candidate" if cat.startswith("candidate") else cat


@dataclass
class Agreement:
    """Agreement statistics; `to_dict` is what `reflection agreement --json` prints."""

    n_items: int
    n_reviewers: int
    percent: float | None
    cohen_kappa: list[dict[str, Any]]  # {a, b, kappa, n}
    fleiss_kappa: float | None
    fleiss_kappa_ci: list[float] | None
    fleiss_n_items: int
    krippendorff_alpha: float | None
    krippendorff_alpha_ci: list[float] | None
    confusion: dict[str, dict[str, Any]] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    bootstrap: int = BOOTSTRAP
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _quietly(function, *args, **kwargs) -> float | None:
    """A statistic, None where the data leave it undefined (0/0, one value in the domain)."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        try:
            return _finite(function(*args, **kwargs))
        except (ValueError, ZeroDivisionError, AssertionError):
            return None


# scikit-learn, statsmodels and krippendorff are imported where they are used: together they
# take ~2 s to import, which every CLI command paid before it started (the CLI imports this).


def _fleiss(codes: np.ndarray, n_categories: int) -> float | None:
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    counts, _ = aggregate_raters(codes, n_cat=n_categories)
    return _quietly(fleiss_kappa, counts, method="fleiss")


def _alpha(value_counts: np.ndarray) -> float | None:
    import krippendorff

    return _quietly(
        krippendorff.alpha,
        value_counts=value_counts,
        value_domain=np.arange(value_counts.shape[1]),
        level_of_measurement="nominal",
    )


def _interval(draws: list[float | None]) -> list[float] | None:
    finite = [d for d in draws if d is not None]
    if not finite:
        return None
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)]


def _percent(items: list[dict[str, str]]) -> float | None:
    shares = []
    for rated in items:
        pairs = list(combinations(rated.values(), 2))
        shares.append(sum(a == b for a, b in pairs) / len(pairs))
    return float(np.mean(shares)) if shares else None


def _majority(rated: Mapping[str, str]) -> str | None:
    top, n = Counter(rated.values()).most_common(1)[0]
    return top if n * 2 > len(rated) else None


def compute(
    ratings: Ratings,
    adjudicated: Mapping[Any, str] | None = None,
    *,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
) -> Agreement:
    """Agreement among `ratings` (item -> reviewer -> category); items rated once are ignored.

    `adjudicated` (item -> category) is the consensus where an admin decided.
    """
    from sklearn.metrics import cohen_kappa_score

    adjudicated = adjudicated or {}
    keys = sorted((k for k, rated in ratings.items() if len(rated) >= 2), key=str)
    items = [dict(ratings[k]) for k in keys]
    reviewers = sorted({r for rated in items for r in rated})
    categories = sorted({c for rated in items for c in rated.values()})
    code = {c: n for n, c in enumerate(categories)}

    cohen = []
    for a, b in combinations(reviewers, 2):
        both = [rated for rated in items if a in rated and b in rated]
        if both:
            kappa = _quietly(
                cohen_kappa_score, [r[a] for r in both], [r[b] for r in both], labels=categories
            )
            cohen.append({"a": a, "b": b, "kappa": kappa, "n": len(both)})

    # Fleiss: the items with the most usual number of ratings (ties: the larger number).
    sizes = Counter(len(rated) for rated in items)
    size = max(sizes, key=lambda m: (sizes[m], m)) if sizes else 0
    fleiss_items = [rated for rated in items if len(rated) == size]
    fleiss_codes = np.array(
        [[code[c] for c in rated.values()] for rated in fleiss_items], dtype=int
    ).reshape(len(fleiss_items), size)
    value_counts = np.zeros((len(items), max(len(categories), 1)))
    for row, rated in enumerate(items):
        for c in rated.values():
            value_counts[row, code[c]] += 1

    rng = np.random.default_rng(seed)
    fleiss_draws, alpha_draws = [], []
    for _ in range(bootstrap if items else 0):
        if fleiss_items:
            picked = rng.integers(0, len(fleiss_items), len(fleiss_items))
            fleiss_draws.append(_fleiss(fleiss_codes[picked], len(categories)))
        alpha_draws.append(_alpha(value_counts[rng.integers(0, len(items), len(items))]))

    return Agreement(
        n_items=len(items),
        n_reviewers=len(reviewers),
        percent=_percent(items),
        cohen_kappa=cohen,
        fleiss_kappa=_fleiss(fleiss_codes, len(categories)) if fleiss_items else None,
        fleiss_kappa_ci=_interval(fleiss_draws),
        fleiss_n_items=len(fleiss_items),
        krippendorff_alpha=_alpha(value_counts) if items else None,
        krippendorff_alpha_ci=_interval(alpha_draws),
        confusion=_confusion(keys, items, reviewers, adjudicated),
        categories=categories,
        bootstrap=bootstrap,
        seed=seed,
    )


def _confusion(
    keys: list, items: list[dict[str, str]], reviewers: list[str], adjudicated: Mapping
) -> dict[str, dict[str, Any]]:
    from sklearn.metrics import confusion_matrix

    consensus = {}
    for key, rated in zip(keys, items, strict=True):
        agreed = adjudicated.get(key) or _majority(rated)
        if agreed is not None:
            consensus[key] = agreed
    tables = {}
    for reviewer in reviewers:
        pairs = [
            (rated[reviewer], consensus[key])
            for key, rated in zip(keys, items, strict=True)
            if reviewer in rated and key in consensus
        ]
        if not pairs:
            continue
        mine = [kind_of(a) for a, _ in pairs]
        agreed = [kind_of(b) for _, b in pairs]
        matrix = confusion_matrix(mine, agreed, labels=list(KINDS))
        tables[reviewer] = {
            "labels": list(KINDS),  # rows: the reviewer's; columns: the consensus's
            "matrix": matrix.tolist(),
            "n": len(pairs),
            "agree": sum(a == b for a, b in pairs),
        }
    return tables


def ratings(store: Store, dataset_id: int) -> tuple[dict[int, dict[str, str]], dict[int, str]]:
    """Each sample's ratings (reviewer -> category) and its adjudicated category, if any:
    of the samples two reviewers or more decided (the others take no part in agreement)."""
    found: dict[int, dict[str, str]] = {}
    adjudicated: dict[int, str] = {}
    for row in store.track_rows(dataset_id, shared=True):
        cat = category(row["status"], row["candidate_id"])
        if cat is None:
            continue
        if row["kind"] == ADJUDICATION:
            adjudicated[row["sample_id"]] = cat
        else:
            found.setdefault(row["sample_id"], {})[row["reviewer"]] = cat
    return found, adjudicated


def agreement(
    store: Store, dataset: str | int, *, bootstrap: int = BOOTSTRAP, seed: int = 0
) -> Agreement:
    """Agreement among the reviewers of a dataset (see the module docstring)."""
    found, adjudicated = ratings(store, store.dataset(dataset).id)
    return compute(found, adjudicated, bootstrap=bootstrap, seed=seed)
