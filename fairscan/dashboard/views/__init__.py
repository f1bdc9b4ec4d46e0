"""One Streamlit script per dashboard page, named after its URL path (``overview.py`` is ``/overview``).

Not called ``pages/``: Streamlit would serve a ``pages/`` folder beside the entry script as
pages of their own, bypassing the navigation in ``main.py``.
"""
