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
IFD >= 1 marks a misaligned pair, not a hard one; a version with a content flag (an empty or
truncated output, meta-talk, repetition, an odd length, an off-topic answer, a low judge
rating: scoring/checks.py) cannot win either, since a student happily finds an empty or
looping text easy to predict; and a sample whose best version is an unreflected one is kept
rather than dropped (the seed's script comments those lines out; that is a data-budget choice
the top-k rule covers). Samples with no IFD / r-IFD scores at all get no suggestion.

A reason names the rule behind each step (higher IFD, lower r-IFD, IFD and r-IFD below 1, a
content flag) and prints every number it compares with enough decimals that the printed
comparison holds, each number followed by the version it belongs to.

Other rules: `threshold` (the first version, in a preferred order, meeting every condition such
as `ifd_ppl<1`), `topk` (Cherry LLM: the top k % of samples by IFD among those below 1), and
`judge` (the reflected version whose judge score beats the original's by a margin). None of
them ever picks a flagged version on its merits.
Suggestions are stored apart from reviews: they never change a human decision, and export
uses them only for samples nobody has decided.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..records import Condition, compared

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
    flags: Mapping[str, str] = field(default_factory=dict)  # content flag -> reason

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


def _margin(a: float, b: float) -> float:
    """A confidence in [0, 1]: the relative gap between two compared scores."""
    top = max(abs(a), abs(b))
    return 0.0 if top == 0 else min(1.0, abs(a - b) / top)


def _known(version: Scored, metric: str) -> float:
    """A score the caller has already seen is there (an eligible or a filtered version's)."""
    value = version.get(metric)
    assert value is not None, f"{version.label} has no {metric}"
    return value


def _vs(name: str, a: Scored, op: str, b: Scored, metric: str) -> str:
    """`IFD 0.812 (instruction #5) > 0.634 (original)`: a true comparison of two versions."""
    left, right = compared(_known(a, metric), op, _known(b, metric))
    return f"{name} {left} ({a.label}) {op} {right} ({b.label})"


def _vs_one(name: str, a: Scored, op: str, metric: str) -> str:
    """`IFD 1.020 (original) ≥ 1`: a true comparison with the misalignment threshold."""
    left, right = compared(_known(a, metric), op, 1.0, exact_b=True)
    return f"{name} {left} ({a.label}) {op} {right}"


def _flagged(version: Scored) -> str | None:
    if not version.flags:
        return None
    name = sorted(version.flags)[0]
    more = f" (and {len(version.flags) - 1} more flag{'s' * (len(version.flags) > 2)})"
    return f"{version.label} is flagged {name}: {version.flags[name]}" + (
        more if len(version.flags) > 1 else ""
    )


def _excluded(version: Scored, ifd: str, rifd: str | None) -> str | None:
    """Why a version cannot be chosen (a flag, IFD >= 1, and with `rifd` r-IFD >= 1), or None."""
    flagged = _flagged(version)
    if flagged:
        return flagged
    for name, metric in (("IFD", ifd), ("r-IFD", rifd)):
        if metric is None:
            continue
        value = version.get(metric)
        if value is None:
            return f"{version.label} has no {name}"
        if value >= 1:
            return _vs_one(name, version, "≥", metric)
    return None


def _none_eligible(what: str, versions: Sequence[Scored], ifd: str, rifd: str | None) -> str:
    reasons = [_excluded(v, ifd, rifd) for v in versions[:3]]
    more = f", {len(versions) - 3} more" if len(versions) > 3 else ""
    return f"no reflected {what} is eligible ({', '.join(r for r in reasons if r)}{more})"


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

    # Stage 1, the higher-IFD rule: the eligible instruction with the highest IFD; the original
    # wins ties. Eligible: IFD < 1 and no flag.
    said: list[str] = []
    current, confidence = original, None
    eligible_q = [q for q in questions if _excluded(q, ifd, None) is None]
    best_q = max(eligible_q, key=lambda q: (q.get(ifd), -(q.candidate_id or 0)), default=None)
    original_out = _excluded(original, ifd, None)
    if best_q is None and questions:
        said.append(f"original instruction kept: {_none_eligible('instruction', questions, ifd, None)}")  # fmt: skip
    elif best_q is not None and original_out is not None:
        current = best_q
        said.append(f"{best_q.label} replaces the original instruction, which is excluded: {original_out}")  # fmt: skip
    elif best_q is not None and _known(best_q, ifd) > _known(original, ifd):
        current = best_q
        said.append(f"{best_q.label} chosen by the higher-IFD rule: {_vs('IFD', best_q, '>', original, ifd)}")  # fmt: skip
        confidence = _margin(_known(best_q, ifd), _known(original, ifd))
    elif best_q is not None:
        said.append(f"original instruction kept by the higher-IFD rule: {_vs('IFD', original, '≥', best_q, ifd)}")  # fmt: skip
        confidence = _margin(_known(best_q, ifd), _known(original, ifd))

    # Stage 2, the lower-r-IFD rule: the current pair or its eligible response reflection with
    # the lowest r-IFD; the current pair wins ties. Eligible: IFD < 1, r-IFD < 1, no flag.
    chosen = current
    answers = answers_of(current)
    eligible_a = [a for a in answers if _excluded(a, ifd, rifd) is None]
    best_a = min(eligible_a, key=lambda a: (a.get(rifd), a.candidate_id or 0), default=None)
    current_out = _excluded(current, ifd, rifd)
    if best_a is None and answers:
        said.append(f"response kept: {_none_eligible('response', answers, ifd, rifd)}")
    elif best_a is not None and current_out is not None:
        chosen = best_a
        said.append(f"{best_a.label} replaces the response of {current.label}, which is excluded: {current_out}")  # fmt: skip
    elif best_a is not None and _known(best_a, rifd) < _known(current, rifd):
        chosen = best_a
        said.append(f"{best_a.label} chosen by the lower-r-IFD rule: {_vs('r-IFD', best_a, '<', current, rifd)}")  # fmt: skip
        confidence = _margin(_known(best_a, rifd), _known(current, rifd))
    elif best_a is not None:
        said.append(f"response of {current.label} kept by the lower-r-IFD rule: {_vs('r-IFD', current, '≤', best_a, rifd)}")  # fmt: skip

    # The result must be aligned and unflagged: IFD < 1 and r-IFD < 1.
    out = _excluded(chosen, ifd, rifd)
    if out is None:
        return Choice(chosen.candidate_id, ACCEPT, "; ".join(said) or f"{chosen.label} kept", confidence)  # fmt: skip
    said.append(f"left out by the IFD < 1 and r-IFD < 1 rule and the content flags: {out}")
    return Choice(None, REJECT, "; ".join(said), 1.0)


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
        (v for v in versions if v.kind in order and not v.flags),
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
    rivals = [
        v for v in versions
        if v.candidate_id is not None and v.get(metric) is not None and not v.flags
    ]  # fmt: skip
    best = max(rivals, key=lambda v: (v.get(metric), -(v.candidate_id or 0)), default=None)
    if best is not None and _known(best, metric) - base >= margin:
        gap = _known(best, metric) - base
        return Choice(
            best.candidate_id,
            ACCEPT,
            f"{best.label}: {metric} {best.get(metric):g} beats original {base:g} by {gap:g}",
            min(1.0, gap / 9),
        )
    if best is None:
        return None
    return Choice(
        None,
        ACCEPT,
        f"original kept: best reflection {metric} {best.get(metric):g} vs {base:g}"
        f" (margin {margin:g} not reached)",
        None,
    )


def _lead(versions: Sequence[Scored], margin: float, metric: str) -> Choice | None:
    rivals = [
        v for v in versions
        if v.candidate_id is not None and v.get(metric) is not None and not v.flags
    ]  # fmt: skip
    if not rivals:
        return None
    best = max(rivals, key=lambda v: (v.get(metric), -(v.candidate_id or 0)))
    lead = _known(best, metric)
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
    check_percent(percent)
    ranked: list[tuple[float, int, Scored]] = []
    choices: dict[int, Choice] = {}
    for sample_id, versions in samples.items():
        found = topk_pick(versions, metric=metric, below=below, version=version)
        if isinstance(found, Choice):
            choices[sample_id] = found
        elif found is not None:
            ranked.append((_known(found, metric), sample_id, found))
    keep = math.floor(percent / 100 * len(samples))
    ranked.sort(key=lambda item: (-item[0], item[1]))
    for rank, (value, sample_id, pick) in enumerate(ranked, start=1):
        choices[sample_id] = topk_choice(pick, value, rank, len(ranked), keep, percent, metric)
    return choices


def check_percent(percent: float) -> None:
    if not 0 < percent <= 100:
        raise ConfigError(f"--percent must be in (0, 100], not {percent:g}")


def topk_pick(
    versions: Sequence[Scored], *, metric: str, below: float = 1.0, version: str = "best"
) -> Scored | Choice | None:
    """`topk` for one sample: the version it is ranked by, a verdict when every version is
    misaligned, or None when none has a value."""
    pool = [v for v in versions if (version == "best" or v.candidate_id is None) and not v.flags]
    scored = [v for v in pool if v.get(metric) is not None]
    if not scored:
        return None
    usable = [v for v in scored if _known(v, metric) < below]
    if not usable:
        return Choice(None, REJECT, f"{metric} >= {below:g} for every version (misaligned)", 1.0)
    return max(usable, key=lambda v: (v.get(metric), -(v.candidate_id or 0)))


def topk_choice(
    pick: Scored, value: float, rank: int, ranked: int, keep: int, percent: float, metric: str
) -> Choice:
    """`topk`'s verdict for the sample ranked `rank` of `ranked` by `pick`'s `value`."""
    return Choice(
        pick.candidate_id,
        ACCEPT if rank <= keep else REJECT,
        f"{pick.label}: {metric} {value:.3f} ranks {rank} of {ranked};"
        f" top {percent:g} % keeps {keep}",
        None,
    )


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
