"""``python -m nnscratch`` is the ``nnscratch`` command."""

from .cli import main

raise SystemExit(main())
