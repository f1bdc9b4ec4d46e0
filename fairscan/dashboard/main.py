"""The dashboard's entry script: page set-up, navigation, the error guard and the sidebar.

Every page opens on its own URL: a deep link or a reload starts from the defaults (the bank
dataset with its reference model's held-out scores, budget 20%, tiers age=[24,59] and
balance=4). Nothing leaves the machine: see ``.streamlit/config.toml`` beside this file.
"""

from __future__ import annotations

import streamlit as st

from fairscan.dashboard.state import get_setup, warm_up
from fairscan.dashboard.widgets import PAGES, page, sidebar
from fairscan.errors import FairscanError

__all__ = ["main"]


def _home() -> None:
    """The root URL: go to the overview, so that the overview keeps its own URL (/overview)."""
    st.switch_page(page("overview"))


def main() -> None:
    """Lay out the app: navigation between the pages, each page's user mistakes as one error line."""
    # no page_icon, and pages carry none: a Material icon favicon would be fetched from fonts.gstatic.com
    st.set_page_config(page_title="fairscan", layout="wide")
    home = st.Page(_home, title="fairscan", url_path="home", default=True, visibility="hidden")
    sections = {section: [page(name) for name, (_, s) in PAGES.items() if s == section]
                for section in ("Targeting", "Setup", "More")}
    sections["Targeting"].insert(0, home)
    nav = st.navigation(sections)
    try:
        nav.run()
    except FairscanError as e:  # a user mistake: one clear line, never a traceback
        st.error(f"{e}", icon=":material/error:")
        st.page_link(page("data"), label="Change the data or settings", icon=":material/tune:")
    sidebar(get_setup())  # after the page: it shows the settings the page may just have changed
    warm_up()  # once per server: the slowest page's default view, computed before anyone opens it


if __name__ == "__main__":
    main()
