"""``python -m kanconvs.cli``."""

from kanconvs.cli import main

raise SystemExit(main())
