"""Deprecated alias of :mod:`nnscratch.data.download`, kept for one release: import that instead.

Importing ``nnscratch.download`` gives the very module object ``nnscratch.data.download``, not a
copy, so that setting an attribute on one (``monkeypatch.setattr``, say) sets it on the other.
"""

import sys

from .data import download as _download

sys.modules[__name__] = _download
