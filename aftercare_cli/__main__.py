"""``python -m aftercare_cli ...``: the same as the ``aftercare`` command."""

from aftercare_cli.main import main

raise SystemExit(main())
