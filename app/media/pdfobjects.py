"""Walking a PDF's objects, for the cleaner and the report alike (run in the sandbox's worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pikepdf


def every_dictionary(pdf: pikepdf.Pdf) -> Iterator[pikepdf.Dictionary | pikepdf.Stream]:
    """Every dictionary and stream, including those nested directly inside another object.

    An action or an attachment's file spec is often a direct dictionary inside
    the catalog, a name tree or an annotation, which pdf.objects (indirect
    objects only) would miss. References are not followed: each indirect
    object is visited once, from pdf.objects, so cycles cannot loop.
    """
    for top in pdf.objects:
        stack = [top]
        while stack:
            node = stack.pop()
            if isinstance(node, pikepdf.Dictionary | pikepdf.Stream):
                yield node
                children = list(node.values())
            elif isinstance(node, pikepdf.Array):
                children = list(node)
            else:
                continue
            stack.extend(child for child in children if isinstance(child, pikepdf.Object) and not child.is_indirect)
