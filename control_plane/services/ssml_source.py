"""The SSML source as the parser reads it: its vocabulary (namespaces, elements and their attributes)
and where each element sits in the text (line and column, for errors that point at it)."""

from __future__ import annotations

from lxml import etree

SSML_NS = "http://www.w3.org/2001/10/synthesis"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XML_LANG = f"{{{XML_NS}}}lang"

ALLOWED_ATTRS: dict[str, set[str]] = {
    "speak": {"version", XML_LANG, f"{{{XML_NS}}}base"},
    "p": {XML_LANG},
    "s": {XML_LANG},
    "break": {"time", "strength"},
    "prosody": {"rate", "pitch", "volume"},
    "say-as": {"interpret-as", "format", "detail"},
    "sub": {"alias"},
    "emphasis": {"level"},
    "voice": {"name", XML_LANG},
    "lang": {XML_LANG},
    "mark": {"name"},
    "phoneme": {"ph", "alphabet"},
    "lexicon": {"uri", "type", f"{{{XML_NS}}}id"},
}


def element_name(el: etree._Element) -> str | None:
    """The SSML local name of `el`; None for comments and elements of other namespaces."""
    if not isinstance(el.tag, str):
        return None
    q = etree.QName(el)
    if q.namespace not in (None, SSML_NS):
        return None
    return q.localname


class SourcePositions:
    """Line and column of elements in the source. lxml gives only the line: the column is where the
    n-th `<name` on that line starts, n counting the elements of that name located there before, so
    elements are located in document order (`locate`) and looked up after (`of`)."""

    def __init__(self, source: str) -> None:
        self._lines = source.splitlines()
        self._seen: dict[tuple[int, str], int] = {}
        self._pos: dict[etree._Element, tuple[int, int]] = {}

    def locate(self, el: etree._Element) -> tuple[int, int]:
        line = el.sourceline or 0
        tag = el.tag if isinstance(el.tag, str) else ""
        qname = tag.split("}")[-1]
        if el.prefix:
            qname = f"{el.prefix}:{qname}"
        col = 0
        if 0 < line <= len(self._lines):
            n = self._seen.get((line, qname), 0)
            idx = -1
            for _ in range(n + 1):
                idx = self._lines[line - 1].find("<" + qname, idx + 1)
                if idx < 0:
                    break
            self._seen[(line, qname)] = n + 1
            col = idx + 1 if idx >= 0 else 1
        self._pos[el] = (line, col)
        return line, col

    def of(self, el: etree._Element) -> tuple[int, int]:
        """Where `el` was located; an element never located is located now."""
        return self._pos.get(el) or self.locate(el)
