"""`python -m pytest_scriptum.devserver`: the scriptum-devserver console script."""

from .cli import main

raise SystemExit(main())
