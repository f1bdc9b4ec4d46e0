"""The fairscan dashboard from a checkout: ``streamlit run app.py`` (or ``fairscan app`` anywhere).

The dashboard lives in the package (``fairscan/dashboard``), so an installed fairscan has it
too; this file only hands over to it. ``.streamlit/config.toml`` beside it is the package's
``fairscan/dashboard/.streamlit/config.toml`` (a link): the same settings either way.
"""

from fairscan.dashboard.main import main

main()
