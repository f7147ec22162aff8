"""A griffe extension for the API reference: nnscratch's docstrings use Sphinx's roles
(``:class:`~nnscratch.TrainSettings```), which Markdown would show as they are typed. Each role
becomes a code span of the name it refers to (its last part when written with ``~``)."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    def code(match: re.Match) -> str:
        tilde, target = match.groups()
        target = target.strip()
        if tilde:
            target = target.rsplit(".", 1)[-1]
        return f"`{target}`"
    return ROLE.sub(code, text)


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
