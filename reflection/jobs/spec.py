"""What a background job runs, kept in the database so that any app server can rebuild it.

The spec is stored whole (the stage's settings object field by field) except the API key,
which never leaves the memory of the process that was given it. Where the key came from is
stored instead, as a name: another server can then find a key of its own from the same
place (its environment), or say plainly that it cannot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from ..config import api_key as env_api_key
from ..errors import ConfigError
from ..reflect.settings import MODES, OracleConfig
from ..scoring.settings import ScoringSettings
from .selection import Selection, typed

TASKS = ("reflect", "score")
KEY_ENV = "OPENAI_API_KEY"
# Where a job's key came from: the names stored with it (never the key).
KEY_NONE = "none needed"
KEY_TYPED = "typed in the session"
KEY_FROM_ENV = f"env:{KEY_ENV}"


def key_source(key: str | None) -> str:
    """Where a resolved key came from, as a name fit to store."""
    if not key:
        return KEY_NONE
    return KEY_FROM_ENV if key == os.environ.get(KEY_ENV) else KEY_TYPED


def recover_key(source: str, run_id: int) -> str | None:
    """This process's key for a job whose key came from `source`; ConfigError if it has none."""
    if source in ("", KEY_NONE):
        return None
    if source.startswith("env:"):
        name = source.removeprefix("env:")
        found = os.environ.get(name)
        if found:
            return found
        raise ConfigError(
            f"job {run_id} needs its API key (${name}), which this server does not have;"
            " start it again from the Run page"
        )
    found = env_api_key()
    if found:
        return found
    raise ConfigError(
        f"job {run_id} needs the API key {source} that started it, and this server has no"
        f" ${KEY_ENV}; start it again from the Run page"
    )


def _oracle_record(config: OracleConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields(OracleConfig) if f.name != "api_key"}


def _oracle_from(record: dict[str, Any], api_key: str | None) -> OracleConfig:
    known = {f.name for f in fields(OracleConfig)} - {"api_key"}
    return OracleConfig(**{k: v for k, v in record.items() if k in known}, api_key=api_key)


@dataclass
class JobSpec:
    """What to run: a reflection with its oracle settings, or scoring with its settings.

    The stage's own settings object is carried as built by the page; its API key stays in
    this process's memory (`record()` and `settings()` leave it out).
    """

    task: str
    dataset_id: int
    selection: Selection = Selection()  # reflection only: which samples
    mode: str = "instruction"
    oracle: OracleConfig | None = None
    scoring: ScoringSettings | None = None

    def validate(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown job task {self.task!r}; use one of {', '.join(TASKS)}")
        if self.task == "reflect":
            if self.oracle is None:
                raise ConfigError("a reflection job needs oracle settings")
            if self.mode not in MODES:
                raise ConfigError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
            self.oracle.validate()
            self.selection.validate()
        else:
            if self.scoring is None:
                raise ConfigError("a scoring job needs scoring settings")
            self.scoring.validate()

    def settings(self) -> dict[str, Any]:
        """For the job's run record (never the key: the stage settings leave it out)."""
        found: dict[str, Any] = {"task": self.task, "dataset_id": self.dataset_id}
        if self.task == "reflect" and self.oracle is not None:
            found.update(mode=self.mode, samples=self.selection.describe())
            found.update(self.oracle.settings())
        elif self.scoring is not None:
            found.update(self.scoring.settings())
        return found

    @property
    def api_key(self) -> str | None:
        """The key the job's oracle uses (the reflection's, or the judge's), if any."""
        if self.oracle is not None:
            return self.oracle.api_key
        judge = self.scoring.judge if self.scoring is not None else None
        return judge.api_key if judge is not None else None

    def record(self) -> dict[str, Any]:
        """Everything `from_record` needs to rebuild the job, as JSON values; no key."""
        found: dict[str, Any] = {"task": self.task, "dataset_id": self.dataset_id,
                                 "selection": self.selection.record(), "mode": self.mode}  # fmt: skip
        if self.oracle is not None:
            found["oracle"] = _oracle_record(self.oracle)
        if self.scoring is not None:
            scoring = {f.name: getattr(self.scoring, f.name) for f in fields(ScoringSettings)}
            judge = scoring.pop("judge")
            scoring = {k: list(v) if isinstance(v, tuple) else v for k, v in scoring.items()}
            scoring["judge"] = None if judge is None else _oracle_record(judge)
            found["scoring"] = scoring
        return found

    @classmethod
    def from_record(cls, record: dict[str, Any], api_key: str | None = None) -> JobSpec:
        """The job `record()` described, with this process's key (if it needs one)."""
        oracle = record.get("oracle")
        scoring = record.get("scoring")
        settings = None
        if scoring is not None:
            known = {f.name for f in fields(ScoringSettings)} - {"judge"}
            values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                      for k, v in scoring.items() if k in known}  # fmt: skip
            judge = scoring.get("judge")
            settings = ScoringSettings(
                **values, judge=None if judge is None else _oracle_from(judge, api_key)
            )
        selection = Selection.from_record(record.get("selection") or {})
        ids = record.get("sample_ids")  # a job recorded before selections were kept as rules
        if ids is not None:
            selection = Selection("ids", ids=typed([int(i) for i in ids]))
        return cls(
            task=record["task"],
            dataset_id=int(record["dataset_id"]),
            selection=selection,
            mode=record.get("mode", "instruction"),
            oracle=None if oracle is None else _oracle_from(oracle, api_key),
            scoring=settings,
        )
