"""``python -m callconsent.cli``: the same as the ``callconsent`` command."""

from callconsent.cli.main import main

raise SystemExit(main())
