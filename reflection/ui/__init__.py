"""The Streamlit layer: the only code in `reflection` that imports streamlit.

Pages call these helpers and the library; nothing here holds business logic. By concern:
`auth` (sign-in, the role check each page and callback makes, typed paths), `session` (the
store, dataset picker, annotator, flash messages), `nav` (page files, header, links),
`review_widgets` (the Review page's parts), `team_widgets` (assignment progress, disputes,
agreement) and `home` (the overview).
"""

from .auth import (
    User,
    allowed,
    confined_path,
    current_user,
    guard,
    require_role,
    sign_out,
    team_settings,
)
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
from .team_widgets import adopt_label, agreement_section, progress_table, show_dispute

__all__ = [
    "ANNOTATOR_KEY",
    "DATASET_KEY",
    "PAGES",
    "User",
    "VIEW_MODES",
    "adopt_label",
    "agreement_section",
    "allowed",
    "annotator",
    "cached_diff",
    "candidate_details",
    "confined_path",
    "current_user",
    "dataset_overview",
    "dataset_picker",
    "db_path",
    "escaped",
    "flag_list",
    "flash",
    "get_store",
    "guard",
    "html_list",
    "page_exists",
    "page_for",
    "page_header",
    "page_links",
    "progress_table",
    "queue_filters",
    "require_dataset",
    "require_role",
    "review_history",
    "review_session",
    "scores_table",
    "set_annotator",
    "show_error",
    "show_dispute",
    "show_flash",
    "show_version_field",
    "sidebar_navigation",
    "sign_out",
    "start_edit",
    "state_and_suggestion",
    "status_counts_line",
    "team_settings",
]
