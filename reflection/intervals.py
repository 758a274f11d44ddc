"""Interval estimates for spot-checks: Wilson score intervals, per stratum and combined.

The bad share of a reviewed sample gets a Wilson score interval (95 %), with the finite-population
correction folded into the sample size, n_eff = n (N - 1) / (N - n): a draw of 50 from 3,111
is almost a draw with replacement, one of 3,000 from 3,111 nearly a census. Stratified, the
share is the population-weighted mean of the strata's shares and its interval is Wilson at
Kish's effective sample size, 1 / sum(W_h^2 fpc_h / n_h). Strata nobody reviewed yet widen the
count's interval by their whole size, so the bounds stay honest while reviews accumulate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054
ALL = "all"


def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a share `p` observed in `n` (possibly effective, fractional)."""
    if n <= 0:
        return 0.0, 1.0
    if math.isinf(n):
        return p, p
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if p <= 0 else max(0.0, centre - half)
    high = 1.0 if p >= 1 else min(1.0, centre + half)
    return low, high


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for `successes` out of `n` trials."""
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in 0..n, got {successes} of {n}")
    return wilson(successes / n if n else 0.0, n, z)


def effective_n(n: int, population: int | None) -> float:
    """n with the finite-population correction folded in; infinite for a census."""
    if population is None:
        return float(n)
    if n >= population:
        return math.inf
    return n * (population - 1) / (population - n)


@dataclass
class Estimate:
    """The bad share in a reviewed sample and what it implies for the population it came from."""

    stratum: str
    population: int
    drawn: int
    reviewed: int
    bad: int
    rate: float | None  # estimated bad share; None before any review
    low: float | None
    high: float | None

    @property
    def good(self) -> int:
        return self.reviewed - self.bad

    @property
    def acceptance(self) -> tuple[float, float, float] | None:
        """Acceptance rate (good share) with its 95 % interval."""
        if self.rate is None or self.low is None or self.high is None:
            return None
        return 1 - self.rate, 1 - self.high, 1 - self.low

    @property
    def bad_count(self) -> tuple[float, float, float] | None:
        """Bad samples implied in the whole population: (estimate, low, high)."""
        if self.rate is None or self.low is None or self.high is None:
            return None
        n = self.population
        return self.rate * n, self.low * n, self.high * n

    def sentence(self) -> str:
        """'accepting everything would keep about 620 ± 340 bad samples of 3,111 (…)'."""
        count, acceptance = self.bad_count, self.acceptance
        if count is None or acceptance is None:
            return f"no reviews yet ({self.drawn:,} drawn of {self.population:,})"
        value, low, high = count
        half = (high - low) / 2
        step = _round_step(half)
        about, plus = round(value / step) * step, round(half / step) * step
        accept, alow, ahigh = acceptance
        return (
            f"{self.good:,} of {self.reviewed:,} reviewed accepted ({_pct(accept)}, 95 % CI"
            f" {_pct(alow)}–{_pct(ahigh)}): accepting everything would keep about {about:,.0f}"
            f" ± {plus:,.0f} bad samples of {self.population:,}"
            f" (95 % CI {math.floor(low):,}–{math.ceil(high):,})"
        )

    def as_dict(self) -> dict[str, Any]:
        count = self.bad_count or (None, None, None)
        return {
            "stratum": self.stratum,
            "population": self.population,
            "drawn": self.drawn,
            "reviewed": self.reviewed,
            "bad": self.bad,
            "bad_rate": self.rate,
            "bad_rate_low": self.low,
            "bad_rate_high": self.high,
            "bad_in_population": count[0],
            "bad_in_population_low": count[1],
            "bad_in_population_high": count[2],
            "summary": self.sentence(),
        }


def _pct(share: float) -> str:
    """A share as a percentage, with a decimal where whole percents would round to 0 or 100."""
    if share in (0, 1) or 0.01 <= share <= 0.99:
        return f"{share:.0%}"
    return f"{share:.1%}"


def _round_step(half: float) -> float:
    """A rounding step with two significant digits of the interval's half-width."""
    if half <= 0:
        return 1.0
    return max(1.0, float(10 ** (math.floor(math.log10(half)) - 1)))


def stratum_estimate(
    stratum: str, population: int, drawn: int, reviewed: int, bad: int
) -> Estimate:
    """The estimate for one simple random sample (one stratum, or an unstratified draw)."""
    if reviewed == 0:
        return Estimate(stratum, population, drawn, 0, 0, None, None, None)
    rate = bad / reviewed
    low, high = wilson(rate, effective_n(reviewed, population))
    return Estimate(stratum, population, drawn, reviewed, bad, rate, low, high)


def combined_estimate(strata: list[Estimate], stratum: str = ALL) -> Estimate:
    """The whole population's estimate from its strata's (see the module docstring)."""
    population = sum(s.population for s in strata)
    drawn = sum(s.drawn for s in strata)
    seen = [s for s in strata if s.reviewed]
    reviewed, bad = sum(s.reviewed for s in seen), sum(s.bad for s in seen)
    if not seen or not population:
        return Estimate(stratum, population, drawn, reviewed, bad, None, None, None)
    if len(strata) == 1:
        return stratum_estimate(stratum, population, drawn, reviewed, bad)
    covered = sum(s.population for s in seen)
    # Every reviewed stratum has a rate.
    rate = sum(s.population * s.rate for s in seen if s.rate is not None) / covered
    weights = sum(
        (s.population / covered) ** 2 / effective_n(s.reviewed, s.population) for s in seen
    )
    low, high = wilson(rate, 1 / weights if weights else math.inf)
    # Unreviewed strata: anything from none to all of them may be bad.
    unseen = population - covered
    pooled = bad / reviewed
    estimate = (rate * covered + pooled * unseen) / population
    low_all = low * covered / population
    high_all = (high * covered + unseen) / population
    return Estimate(stratum, population, drawn, reviewed, bad, estimate, low_all, high_all)
