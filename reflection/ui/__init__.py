"""The Streamlit layer: the only code in `reflection` that imports streamlit.

Pages call these helpers and the library; nothing here holds business logic. By concern:
`session` (the store, dataset picker, annotator, flash messages), `nav` (page files, header,
links), `review_widgets` (the Review page's parts) and `home` (the overview).
"""

from .home import dataset_overview
from .nav import PAGES, page_exists, page_for, page_header, page_links, sidebar_navigation
from .review_widgets import (
    VIEW_MODES,
    cached_diff,
    candidate_details,
    flag_list,
    queue_filters,
    review_history,
    review_session,
    scores_table,
    show_version_field,
    start_edit,
    state_and_suggestion,
    status_counts_line,
    version_choices,
)
from .session import (
    ANNOTATOR_KEY,
    DATASET_KEY,
    annotator,
    dataset_picker,
    db_path,
    escaped,
    flash,
    get_store,
    html_list,
    require_dataset,
    set_annotator,
    show_error,
    show_flash,
)

__all__ = [
    "ANNOTATOR_KEY",
    "DATASET_KEY",
    "PAGES",
    "VIEW_MODES",
    "annotator",
    "cached_diff",
    "candidate_details",
    "dataset_overview",
    "dataset_picker",
    "db_path",
    "escaped",
    "flag_list",
    "flash",
    "get_store",
    "html_list",
    "page_exists",
    "page_for",
    "page_header",
    "page_links",
    "queue_filters",
    "require_dataset",
    "review_history",
    "review_session",
    "scores_table",
    "set_annotator",
    "show_error",
    "show_flash",
    "show_version_field",
    "sidebar_navigation",
    "start_edit",
    "state_and_suggestion",
    "status_counts_line",
    "version_choices",
]
