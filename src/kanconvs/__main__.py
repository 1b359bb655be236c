"""``python -m kanconvs``: the same as the ``kanconvs`` command."""

from kanconvs.cli import main

raise SystemExit(main())
