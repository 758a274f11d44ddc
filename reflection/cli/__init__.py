"""The `reflection` command: parse arguments, call the library, print. Nothing else.

One click group (`common.main`); its commands live in modules by concern (data, candidates,
oracle, scoring, serve, team, team_review), which register themselves on it when imported here.
"""

from . import candidates, data, learn, migrate, oracle, scoring, serve, team, team_review
from .common import main

__all__ = [
    "candidates",
    "data",
    "learn",
    "main",
    "migrate",
    "oracle",
    "scoring",
    "serve",
    "team",
    "team_review",
]
