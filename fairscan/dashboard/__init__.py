"""The interactive dashboard (Streamlit): ``fairscan app``, or ``streamlit run app.py`` in a checkout.

It ships inside the package, so an installed fairscan has it. Layout: ``main.py`` is the
Streamlit entry script (navigation, the error guard, the sidebar); ``views/`` holds one script
per page, named after its URL path; ``state.py`` the settings and every cached library call;
``widgets.py`` the shared tables, charts and downloads. ``.streamlit/config.toml`` beside
``main.py`` is the app's Streamlit configuration (offline, localhost, no first-run prompt): as
a script-level config it applies whichever folder the app is started from.

Importing this package does not import Streamlit: the CLI needs only the paths below.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG", "MAIN", "PAGES_DIR"]

#: the Streamlit entry script
MAIN = Path(__file__).resolve().with_name("main.py")
#: one script per page, named after its URL path (views/overview.py is /overview)
PAGES_DIR = MAIN.with_name("views")
#: the app's Streamlit configuration
CONFIG = MAIN.parent / ".streamlit" / "config.toml"
