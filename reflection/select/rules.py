"""Selection rules: from scores to one suggestion per sample (which version, and why).

The default, `selective`, is Selective Reflection-Tuning (Li et al. 2024, arXiv 2402.10110;
`selection_code/get_select_data.py` in tianyi-lab/Reflection_Tuning). A sample has up to four
versions: the original (ori), an instruction-reflected pair (Q, candidate kind `instruction`,
or an unparented `both`), the original's response-reflected pair (A, kind `response` without a
parent) and the response reflection of Q (QA, any candidate whose parent is Q).

1. Instruction stage: Q replaces ori when IFD(Q) > IFD(ori): the student finds the new
   instruction more worth learning. Ties keep ori.
2. Response stage: the response reflection of the stage-1 winner (A for ori, QA for Q) replaces
   it when its r-IFD is lower: its answer points back to its instruction better. Ties keep it.
3. The result must have IFD < 1 and r-IFD < 1, or the sample is suggested for leaving out.

Where we differ from the seed script, and why: a version with IFD >= 1 (or no score) cannot
win a stage (the seed lets it win stage 1 and then drops the sample at step 3), because
IFD >= 1 marks a misaligned pair, not a hard one; and a sample whose best version is an
unreflected one is kept rather than dropped (the seed's script comments those lines out; that
is a data-budget choice the top-k rule covers). Samples with no IFD / r-IFD scores at all get
no suggestion.

Other rules: `threshold` (the first version, in a preferred order, meeting every condition such
as `ifd_ppl<1`), `topk` (Cherry LLM: the top k % of samples by IFD among those below 1), and
`judge` (the reflected version whose judge score beats the original's by a margin).
Suggestions are stored apart from reviews: they never change a human decision, and export
uses them only for samples nobody has decided.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..records import Condition

RULES = ("selective", "threshold", "topk", "judge")
ACCEPT, REJECT = "accept", "reject"
DEFAULT_PREFERENCE = ("both", "instruction", "response", "original")


@dataclass(frozen=True)
class Scored:
    """One version of a sample with the scores a rule may read (one scorer per metric)."""

    candidate_id: int | None
    kind: str = "original"
    parent_id: int | None = None
    scores: Mapping[str, float | None] = field(default_factory=dict)

    def get(self, metric: str) -> float | None:
        value = self.scores.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value

    @property
    def label(self) -> str:
        return "original" if self.candidate_id is None else f"{self.kind} #{self.candidate_id}"


@dataclass(frozen=True)
class Choice:
    """A rule's verdict for one sample: keep `candidate_id` (None: the original) or leave out."""

    candidate_id: int | None
    decision: str
    reason: str
    confidence: float | None = None


def parse_condition(text: str) -> Condition:
    """`ifd_ppl<1`, `judge>=7`, `drift >= 0.6` → Condition; ConfigError otherwise."""
    return Condition.parse(text)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _margin(a: float, b: float) -> float:
    """A confidence in [0, 1]: the relative gap between two compared scores."""
    top = max(abs(a), abs(b))
    return 0.0 if top == 0 else min(1.0, abs(a - b) / top)


# --------------------------------------------------------------------------- selective


def _eligible_stage1(version: Scored, ifd: str) -> bool:
    value = version.get(ifd)
    return value is not None and value < 1


def _passes(version: Scored, ifd: str, rifd: str) -> bool:
    a, b = version.get(ifd), version.get(rifd)
    return a is not None and b is not None and a < 1 and b < 1


def selective(
    versions: Sequence[Scored], *, ifd: str = "ifd_ppl", rifd: str = "rifd_ppl"
) -> Choice | None:
    """The Selective Reflection-Tuning rule for one sample (see the module docstring)."""
    if not any(v.get(ifd) is not None and v.get(rifd) is not None for v in versions):
        return None
    original = next((v for v in versions if v.candidate_id is None), Scored(None))
    ids = {v.candidate_id for v in versions if v.candidate_id is not None}
    questions = [
        v
        for v in versions
        if v.kind == "instruction" or (v.kind == "both" and v.parent_id not in ids)
    ]

    def answers_of(parent: Scored) -> list[Scored]:
        if parent.candidate_id is None:
            return [v for v in versions if v.kind == "response" and v.parent_id is None]
        return [v for v in versions if v.parent_id == parent.candidate_id]

    # Stage 1: the highest IFD below 1; the original wins ties.
    current, why = original, "original instruction kept"
    best_q = max(
        (q for q in questions if _eligible_stage1(q, ifd)),
        key=lambda q: (q.get(ifd), -(q.candidate_id or 0)),
        default=None,
    )
    confidence = None
    if best_q is not None:
        o_ifd, q_ifd = original.get(ifd), best_q.get(ifd)
        assert q_ifd is not None  # best_q is eligible
        if o_ifd is None or not _eligible_stage1(original, ifd) or q_ifd > o_ifd:
            current = best_q
            why = f"reflected instruction: IFD {_fmt(q_ifd)} > original {_fmt(o_ifd)}"
            confidence = _margin(q_ifd, o_ifd) if o_ifd is not None else None
        else:
            why = f"original instruction kept: IFD {_fmt(o_ifd)} >= reflected {_fmt(q_ifd)}"
            confidence = _margin(q_ifd, o_ifd)

    # Stage 2: the lowest r-IFD among the current pair and its response reflections.
    chosen = current
    best_a = min(
        (a for a in answers_of(current) if _passes(a, ifd, rifd)),
        key=lambda a: (a.get(rifd), a.candidate_id or 0),
        default=None,
    )
    if best_a is not None:
        c_rifd, a_rifd = current.get(rifd), best_a.get(rifd)
        assert a_rifd is not None  # best_a passes
        if c_rifd is None or not _passes(current, ifd, rifd) or a_rifd < c_rifd:
            chosen = best_a
            why += f"; reflected response: r-IFD {_fmt(a_rifd)}"
            why += f" < {_fmt(c_rifd)}" if c_rifd is not None else ""
            confidence = _margin(a_rifd, c_rifd) if c_rifd is not None else confidence
        else:
            why += f"; response kept: r-IFD {_fmt(c_rifd)} <= reflected {_fmt(a_rifd)}"

    if _passes(chosen, ifd, rifd):
        return Choice(chosen.candidate_id, ACCEPT, why, confidence)
    return Choice(
        None,
        REJECT,
        f"no version has IFD < 1 and r-IFD < 1 (best: {chosen.label}, IFD"
        f" {_fmt(chosen.get(ifd))}, r-IFD {_fmt(chosen.get(rifd))})",
        1.0,
    )


# --------------------------------------------------------------------------- the other rules


def threshold(
    versions: Sequence[Scored],
    conditions: Sequence[Condition],
    *,
    prefer: Sequence[str] = DEFAULT_PREFERENCE,
    otherwise: str = REJECT,
) -> Choice | None:
    """The first version, by kind in `prefer` order, meeting every condition.

    When none does: `otherwise` "reject" leaves the sample out, "original" keeps the original,
    "none" makes no suggestion. Versions missing a metric do not meet its condition.
    """
    if not conditions:
        raise ConfigError("the threshold rule needs at least one condition, e.g. ifd_ppl<1")
    order = {kind: rank for rank, kind in enumerate(prefer)}
    ranked = sorted(
        (v for v in versions if v.kind in order),
        key=lambda v: (order[v.kind], v.candidate_id or 0),
    )
    said = " and ".join(str(c) for c in conditions)
    for version in ranked:
        if all(c.holds(version.get(c.metric)) for c in conditions):
            return Choice(version.candidate_id, ACCEPT, f"{version.label} meets {said}", None)
    if otherwise == "original":
        return Choice(None, ACCEPT, f"no version meets {said}; original kept", None)
    if otherwise == "none":
        return None
    return Choice(None, REJECT, f"no version meets {said}", None)


def judge_margin(
    versions: Sequence[Scored], *, margin: float = 1.0, metric: str = "judge"
) -> Choice | None:
    """The reflected version whose judge score beats the original's by >= margin, else the original.

    With a `*_margin` metric (e.g. `judge_margin` from pairwise comparisons) each reflected
    version's value already is its lead over the original.
    """
    if metric.endswith("_margin"):
        return _lead(versions, margin, metric)
    original = next((v for v in versions if v.candidate_id is None), None)
    base = None if original is None else original.get(metric)
    if base is None:
        return None
    rivals = _rivals(versions, metric)
    if not rivals:
        return None
    top, best = max(rivals, key=_rank)
    if top - base >= margin:
        gap = top - base
        return Choice(
            best.candidate_id,
            ACCEPT,
            f"{best.label}: {metric} {top:g} beats original {base:g} by {gap:g}",
            min(1.0, gap / 9),
        )
    return Choice(
        None,
        ACCEPT,
        f"original kept: best reflection {metric} {top:g} vs {base:g}"
        f" (margin {margin:g} not reached)",
        None,
    )


def _rivals(versions: Sequence[Scored], metric: str) -> list[tuple[float, Scored]]:
    """(value, version) of the reflected versions with a value of `metric`."""
    return [
        (value, v)
        for v in versions
        if v.candidate_id is not None and (value := v.get(metric)) is not None
    ]


def _rank(item: tuple[float, Scored]) -> tuple[float, int]:
    """Higher values first, then the older version (lower id)."""
    value, version = item
    return value, -(version.candidate_id or 0)


def _lead(versions: Sequence[Scored], margin: float, metric: str) -> Choice | None:
    rivals = _rivals(versions, metric)
    if not rivals:
        return None
    lead, best = max(rivals, key=_rank)
    if lead >= margin:
        return Choice(
            best.candidate_id, ACCEPT, f"{best.label}: {metric} {lead:+g} (>= {margin:g})",
            min(1.0, lead / 9),
        )  # fmt: skip
    return Choice(None, ACCEPT, f"original kept: best {metric} {lead:+g} < {margin:g}", None)


def topk(
    samples: Mapping[int, Sequence[Scored]],
    *,
    percent: float = 10.0,
    metric: str = "ifd_ppl",
    below: float = 1.0,
    version: str = "best",
) -> dict[int, Choice]:
    """Cherry selection over a dataset: keep the top `percent` % of samples by `metric`.

    Each sample is ranked by its original's value (`version="original"`) or by its version with
    the highest value below `below` (`"best"`, which is then the version kept). Values at or
    above `below` (misaligned) are not ranked; samples with no value get no suggestion. The cut
    is `floor(percent / 100 * number of samples)`, as Cherry LLM and Superfiltering count it.
    """
    if not 0 < percent <= 100:
        raise ConfigError(f"--percent must be in (0, 100], not {percent:g}")
    ranked: list[tuple[float, int, Scored]] = []
    choices: dict[int, Choice] = {}
    for sample_id, versions in samples.items():
        pool = [v for v in versions if version == "best" or v.candidate_id is None]
        scored = [(value, v) for v in pool if (value := v.get(metric)) is not None]
        if not scored:
            continue
        usable = [(value, v) for value, v in scored if value < below]
        if not usable:
            choices[sample_id] = Choice(
                None, REJECT, f"{metric} >= {below:g} for every version (misaligned)", 1.0
            )
            continue
        value, pick = max(usable, key=_rank)
        ranked.append((value, sample_id, pick))
    keep = math.floor(percent / 100 * len(samples))
    ranked.sort(key=lambda item: (-item[0], item[1]))
    for rank, (value, sample_id, pick) in enumerate(ranked, start=1):
        inside = rank <= keep
        choices[sample_id] = Choice(
            pick.candidate_id,
            ACCEPT if inside else REJECT,
            f"{pick.label}: {metric} {value:.3f} ranks {rank} of {len(ranked)};"
            f" top {percent:g} % keeps {keep}",
            None,
        )
    return choices


def apply_rule(
    rule: str,
    samples: Mapping[int, Sequence[Scored]],
    *,
    conditions: Iterable[Condition] = (),
    prefer: Sequence[str] = DEFAULT_PREFERENCE,
    otherwise: str = REJECT,
    percent: float = 10.0,
    metric: str | None = None,
    margin: float = 1.0,
) -> dict[int, Choice | None]:
    """Run a named rule over samples → a choice (or None) per sample id."""
    if rule == "selective":
        return {sid: selective(vs) for sid, vs in samples.items()}
    if rule == "threshold":
        conditions = list(conditions)
        return {
            sid: threshold(vs, conditions, prefer=prefer, otherwise=otherwise)
            for sid, vs in samples.items()
        }
    if rule == "topk":
        found = topk(samples, percent=percent, metric=metric or "ifd_ppl")
        return {sid: found.get(sid) for sid in samples}
    if rule == "judge":
        return {
            sid: judge_margin(vs, margin=margin, metric=metric or "judge")
            for sid, vs in samples.items()
        }
    raise ConfigError(f"unknown rule {rule!r}: choose one of {', '.join(RULES)}")
