"""``python -m fairscan``: the same as the ``fairscan`` command."""

from fairscan.cli import main

raise SystemExit(main())
