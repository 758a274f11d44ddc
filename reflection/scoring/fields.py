"""Scores as export fields: one flat field per metric of the exported version.

Student metrics already carry the seed's names (`ifd_ppl`, `rifd_ppl`, `ifd_loss`, `rifd_loss`,
`ppl_A_direct`, `ppl_A_condition`, `ppl_Q_direct`, `ppl_Q_condition`), so records line up with
the Cherry LLM / Reflection-Tuning score files; every other metric keeps its own name. When
several scorers gave one metric to a version (two students, two templates, two judges), the
first of `scorers` that did wins; with none of them, ConfigError names the choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import ConfigError
from ..records import Score
from ..store import Store


def scores_for_export(
    store: Store, versions: Iterable[tuple[int, int | None]], scorers: Sequence[str] = ()
) -> dict[tuple[int, int | None], dict[str, float | None]]:
    """{(sample id, candidate id): {field: value}} for the versions an export writes."""
    wanted = list(versions)
    found: dict[tuple[int, int | None], dict[str, float | None]] = {v: {} for v in wanted}
    by_sample: dict[int, set[int | None]] = {}
    for sample_id, candidate_id in wanted:
        by_sample.setdefault(sample_id, set()).add(candidate_id)
    rank = {name: i for i, name in enumerate(scorers)}
    ids = list(by_sample)
    for start in range(0, len(ids), 500):
        for sample_id, scores in store.scores_for_samples(ids[start : start + 500]).items():
            options: dict[tuple[int | None, str], list[Score]] = {}
            for score in scores:
                if score.candidate_id in by_sample[sample_id]:
                    options.setdefault((score.candidate_id, score.metric), []).append(score)
            for (candidate_id, metric), given in options.items():
                found[(sample_id, candidate_id)][metric] = _pick(given, rank, metric).value
    return found


def _pick(given: list[Score], rank: dict[str, int], metric: str) -> Score:
    preferred = sorted((s for s in given if s.scorer in rank), key=lambda s: rank[s.scorer])
    if preferred:
        return preferred[0]
    if len(given) == 1:
        return given[0]
    names = ", ".join(sorted(s.scorer for s in given))
    raise ConfigError(f"several scorers gave {metric}: {names}; choose with --scores-from")
