"""Prompt experiments: which reflection template do reviewers accept more often?

An experiment is a seeded spot-check (its queue) whose settings name the templates compared,
one *arm* each, by name (the file's stem), path, TOML text and prompt hash. Every drawn sample
is reflected once per template; an arm's candidates are those whose prompt hash is the arm's.
Reviewers see the versions blind: `blind_order` gives a seeded random order and a neutral label
("Version A", ...) per sample, never the template.

Per arm, over the drawn samples a reviewer decided (accepted, edited or rejected):
- acceptance: the version in force is the arm's candidate, or a human edit of it (Wilson 95 %);
- edit rate: the share of the arm's accepted versions that a reviewer edited first;
- mean IFD / r-IFD change: the arm's candidate's score minus the original's, where scored;
- cost: the cost counted by the arm's reflect runs.
Between each two arms: a two-proportion z-test on acceptance, and the decided samples per arm
a test at alpha 0.05 with power 0.8 would need to detect a given difference. (One reviewer
choice per sample makes the arms' counts dependent; the test is a guide, not a proof.)
`promote` makes an arm's template the default for later `reflect` runs (an audit event).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ReflectionError
from ..records import IFD_METRIC, RIFD_METRIC, stored_id
from ..reflect.promoted import PROMOTE_ACTION, promoted_prompts  # noqa: F401 (re-exported)
from ..reflect.prompts import load_prompts, prompt_hash, prompts_from_toml
from ..store import Store
from .spotcheck import create_spotcheck

DECIDED = ("accepted", "edited", "rejected")


def _kind(mode: str) -> str:
    return "response" if mode in ("response", "both") else mode


def create_experiment(
    store: Store,
    dataset: str | int,
    name: str,
    templates: Sequence[str | Path],
    *,
    size: int = 100,
    seed: int = 0,
    mode: str = "response",
    annotator: str = "",
):
    """Draw the spot-check and record the arms; `reflect_arms` then reflects it per template."""
    if len(templates) < 2:
        raise ReflectionError("an experiment compares at least two templates")
    arms: list[dict[str, Any]] = []
    for path in templates:
        path = Path(path)
        prompts = load_prompts(path)
        arms.append(
            {"name": path.stem, "path": str(path), "text": path.read_text(encoding="utf-8"),
             "hash": prompt_hash(_kind(mode), prompts=prompts), "runs": []}
        )  # fmt: skip
    names = [a["name"] for a in arms]
    if len(set(names)) < len(names):
        raise ReflectionError(f"two templates share the name {names!r}: rename one file")
    hashes: dict[str, str] = {}
    for arm in arms:
        if arm["hash"] in hashes:
            raise ReflectionError(
                f"templates {hashes[arm['hash']]!r} and {arm['name']!r} ask the same"
                f" {_kind(mode)} prompt: nothing to compare"
            )
        hashes[arm["hash"]] = arm["name"]
    spot = create_spotcheck(
        store, dataset, name, size=size, seed=seed, good="accepted", annotator=annotator
    )
    settings = {**spot.settings, "experiment": {"mode": mode, "arms": arms}}
    store.set_spotcheck_settings(stored_id(spot), settings)
    spot.settings = settings
    return spot


def arms_of(store: Store, name: str | int, dataset: str | int | None = None):
    dataset_id = store.dataset(dataset).id if dataset is not None else None
    spot = store.spotcheck(name, dataset_id)
    experiment = spot.settings.get("experiment")
    if not experiment:
        raise ReflectionError(f"spot-check {spot.name!r} is not a prompt experiment")
    return spot, experiment


def reflect_arms(store: Store, name: str | int, *, oracle, prices=None, progress=None) -> list:
    """Reflect the experiment's samples once per template; records each arm's run ids."""
    from ..reflect.pipeline import reflect_dataset

    spot, experiment = arms_of(store, name)
    ids = store.spotcheck_sample_ids(spot.id)
    summaries = []
    for arm in experiment["arms"]:
        prompts = prompts_from_toml(arm["text"], arm["path"])
        summary = reflect_dataset(
            store, spot.dataset_id, mode=experiment["mode"], oracle=oracle, prompts=prompts,
            prices=prices, sample_ids=ids, progress=progress,
        )  # fmt: skip
        arm["runs"].append(summary.run_id)
        summaries.append((arm["name"], summary))
    store.set_spotcheck_settings(spot.id, {**spot.settings, "experiment": experiment})
    return summaries


def blind_order(store: Store, name: str | int, sample_id: int) -> list[tuple[str, int]]:
    """The sample's experiment versions as (neutral label, candidate id), in a seeded random
    order that differs per sample; nothing in it says which template wrote which."""
    spot, experiment = arms_of(store, name)
    found = store.candidates_by_prompt([sample_id], [a["hash"] for a in experiment["arms"]])
    versions = [
        c for arm in experiment["arms"] for c in found.get((sample_id, arm["hash"]), [])[-1:]
    ]
    random.Random(f"{spot.seed}:{sample_id}").shuffle(versions)
    return [(f"Version {chr(65 + i)}", cid) for i, cid in enumerate(versions)]


def blind_labels(
    store: Store, dataset_id: int, sample_id: int, spotcheck_id: int | None = None
) -> dict[int, str] | None:
    """{candidate id: "Version A", ...} in blind order for a sample in a prompt experiment
    (the queue's spot-check if it is one, else any experiment drawing the sample); None for
    other samples. The Review page shows these labels instead of ids and kinds."""
    spots = sorted(store.spotchecks(dataset_id), key=lambda s: s.id != spotcheck_id)
    for spot in spots:
        spot_id = stored_id(spot)
        if spot.settings.get("experiment") and sample_id in store.spotcheck_sample_ids(spot_id):
            return {cid: label for label, cid in blind_order(store, spot_id, sample_id)}
    return None


@dataclass
class Arm:
    name: str
    decided: int
    accepted: int
    edited: int
    interval: tuple[float, float]
    ifd_change: float | None
    rifd_change: float | None
    cost: float
    reflected: int

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.decided if self.decided else None

    @property
    def edit_rate(self) -> float | None:
        return self.edited / self.accepted if self.accepted else None


@dataclass
class Comparison:
    a: str
    b: str
    z: float | None
    p_value: float | None
    needed_per_arm: int | None  # decided samples per arm to detect `difference`
    difference: float


@dataclass
class ExperimentReport:
    name: str
    size: int
    arms: list[Arm]
    comparisons: list[Comparison] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        arms = [
            {**a.__dict__, "acceptance": a.acceptance, "edit_rate": a.edit_rate} for a in self.arms
        ]
        return {"name": self.name, "size": self.size, "arms": arms,
                "comparisons": [c.__dict__ for c in self.comparisons]}  # fmt: skip


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def report(
    store: Store, name: str | int, dataset: str | int | None = None, *, difference: float = 0.1
) -> ExperimentReport:
    """Per-arm acceptance (Wilson), edit rate, score changes and cost; pairwise tests."""
    from statsmodels.stats.proportion import proportion_confint

    spot, experiment = arms_of(store, name, dataset)
    ids = store.spotcheck_sample_ids(spot.id)
    states = {i.sample_id: i for i in store.spotcheck_items(spot.id) if i.status in DECIDED}
    hashes = [a["hash"] for a in experiment["arms"]]
    produced = store.candidates_by_prompt(ids, hashes)
    chosen = [s.candidate_id for s in states.values() if s.candidate_id]
    parents = {c.id: c.parent_id for c in store.candidates_by_id(chosen).values()}
    values = {m: store.version_values(ids, m) for m in (IFD_METRIC, RIFD_METRIC)}
    arms = []
    for arm in experiment["arms"]:
        mine = {cid: sid for (sid, h), cids in produced.items() if h == arm["hash"] for cid in cids}
        accepted = edited = 0
        for state in states.values():
            cid = state.candidate_id
            if cid in mine:
                accepted += 1
            elif state.status == "edited" and parents.get(cid) in mine:
                accepted += 1
                edited += 1
        changes = {}
        for metric, table in values.items():
            deltas = [
                table[(sid, cid)] - table[(sid, 0)]
                for cid, sid in mine.items()
                if (sid, cid) in table and (sid, 0) in table
            ]
            changes[metric] = _mean(deltas)
        n = len(states)
        low, high = (
            proportion_confint(accepted, n, alpha=0.05, method="wilson") if n else (0.0, 1.0)
        )
        cost = sum(float(store.get_run(r).counters.get("cost", 0) or 0) for r in arm["runs"])
        arms.append(
            Arm(arm["name"], n, accepted, edited, (float(low), float(high)), changes[IFD_METRIC],
                changes[RIFD_METRIC], cost, len({sid for sid in mine.values()}))
        )  # fmt: skip
    comparisons = [_compare(a, b, difference) for a, b in itertools.combinations(arms, 2)]
    return ExperimentReport(spot.name, len(ids), arms, comparisons)


def _compare(a: Arm, b: Arm, difference: float) -> Comparison:
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

    z = p = needed = None
    if a.decided and b.decided and 0 < a.accepted + b.accepted < a.decided + b.decided:
        z, p = (
            float(v) for v in proportions_ztest([a.accepted, b.accepted], [a.decided, b.decided])
        )
    pooled = (a.accepted + b.accepted) / (a.decided + b.decided) if a.decided + b.decided else 0.5
    low = min(max(pooled - difference / 2, 0.0), 1.0 - difference)
    effect = proportion_effectsize(low + difference, low)
    if effect:
        needed = math.ceil(NormalIndPower().solve_power(effect, alpha=0.05, power=0.8, ratio=1.0))
    return Comparison(a.name, b.name, z, p, needed, difference)


def promote(store: Store, name: str | int, template: str | None = None, *, actor: str = "") -> str:
    """Make an arm's template (by default the most accepted one) the default for `reflect`."""
    spot, experiment = arms_of(store, name)
    result = report(store, spot.id)
    if template is None:
        ranked = sorted(result.arms, key=lambda a: a.acceptance or 0.0, reverse=True)
        if not ranked[0].decided:
            raise ReflectionError(f"experiment {spot.name!r} has no decided samples yet")
        if len(ranked) > 1 and ranked[0].acceptance == ranked[1].acceptance:
            raise ReflectionError(
                f"{ranked[0].name!r} and {ranked[1].name!r} tie; name the template to promote"
            )
        template = ranked[0].name
    arm = next((a for a in experiment["arms"] if a["name"] == template), None)
    if arm is None:
        names = ", ".join(a["name"] for a in experiment["arms"])
        raise ReflectionError(f"experiment {spot.name!r} has no template {template!r} ({names})")
    stats = next(a for a in result.arms if a.name == template)
    store.add_audit_event(
        actor, PROMOTE_ACTION, template, dataset_id=spot.dataset_id,
        detail={"experiment": spot.name, "path": arm["path"], "text": arm["text"],
                "hash": arm["hash"], "acceptance": stats.acceptance, "decided": stats.decided},
    )  # fmt: skip
    return template


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:+.3f}"


def report_lines(result: ExperimentReport) -> list[str]:
    """The report as text lines (CLI)."""
    lines = [f"Experiment {result.name!r}: {result.size} samples drawn"]
    for a in result.arms:
        low, high = a.interval
        lines.append(
            f"  {a.name}: accepted {a.accepted}/{a.decided} = {_pct(a.acceptance)}"
            f" (Wilson 95 % {low:.1%}–{high:.1%}), edited {_pct(a.edit_rate)} of those,"
            f" IFD change {_num(a.ifd_change)}, r-IFD change {_num(a.rifd_change)},"
            f" cost ${a.cost:.4f} for {a.reflected} reflections"
        )
    for c in result.comparisons:
        test = "no test yet" if c.p_value is None else f"z = {c.z:.2f}, p = {c.p_value:.3f}"
        need = "—" if c.needed_per_arm is None else f"{c.needed_per_arm}"
        lines.append(
            f"  {c.a} vs {c.b}: {test}; to detect a {c.difference:.0%} difference:"
            f" {need} decided samples per arm"
        )
    return lines


def reports(store: Store, dataset_id: int) -> list[ExperimentReport]:
    """The report of every prompt experiment of a dataset (the Dashboard)."""
    return [
        report(store, stored_id(s))
        for s in store.spotchecks(dataset_id)
        if s.settings.get("experiment")
    ]


def arm_rows(result: ExperimentReport) -> list[dict[str, Any]]:
    """One row per arm, for a table."""
    return [
        {"template": a.name, "decided": a.decided, "accepted": a.accepted,
         "acceptance": a.acceptance, "wilson_low": a.interval[0], "wilson_high": a.interval[1],
         "edit_rate": a.edit_rate, "ifd_change": a.ifd_change, "rifd_change": a.rifd_change,
         "cost": a.cost}
        for a in result.arms
    ]  # fmt: skip
