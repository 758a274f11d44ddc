"""The home page's overview, cached until the store changes."""

from __future__ import annotations

import streamlit as st

from ..review.overview import dataset_overview as _dataset_overview
from ..store import Store


@st.cache_data(show_spinner=False, max_entries=64)
def _overview(path: str, dataset_id: int, version: tuple) -> dict:
    with Store(path) as store:
        return _dataset_overview(store, dataset_id)


def dataset_overview(store: Store, dataset_id: int) -> dict:
    """review.dataset_overview, cached until the store changes (its version is the key)."""
    version = tuple(sorted(store.version().items()))
    return _overview(str(store.path), dataset_id, version)
