"""W3C Pronunciation Lexicon (PLS 1.0) documents: parsed safely, checked, and applied to text.

A lexicon maps graphemes (written words) to an alias (a respelling, spoken as text) or an IPA
phoneme string. Parsing never resolves entities, loads DTDs or touches the network; a DOCTYPE or
ENTITY declaration is refused. Every problem carries the line and column where it is.
Matching is whole-word and case-sensitive (as the hosted TTS services do), longest grapheme first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from tts_contract import base_language

PLS_NS = "http://www.w3.org/2005/01/pronunciation-lexicon"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_GRAPHEME_CHARS = 100
MAX_ALIAS_CHARS = 200
MAX_PHONEME_CHARS = 200
ALPHABETS = ("ipa",)
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
# What may stand in a phoneme string handed to the phonemiser: no markup, no brackets, no digits.
_PHONEME_JUNK = re.compile(r"[\[\]<>{}\\0-9/.|]")


class PlsError(ValueError):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column
        self.message = message


@dataclass(frozen=True)
class Entry:
    grapheme: str
    alias: str | None = None
    phoneme: str | None = None  # IPA

    def spoken(self) -> str:
        """What replaces the grapheme in the text: the alias, or the phonemes as a `[[ ... ]]` block."""
        if self.phoneme is not None:
            return phoneme_block(self.phoneme)
        return self.alias or self.grapheme


@dataclass(frozen=True)
class Lexicon:
    name: str
    language: str
    entries: dict[str, Entry] = field(default_factory=dict)

    @property
    def base_language(self) -> str:
        return base_language(self.language.replace("_", "-"))


def clean_phonemes(ph: str) -> str:
    """IPA as the phonemiser takes it: one line, no syllable dots or markup."""
    return re.sub(r"\s+", " ", _PHONEME_JUNK.sub("", ph)).strip()


def phoneme_block(ph: str) -> str:
    return f"[[ {clean_phonemes(ph)} ]]"


def _column(lines: list[str], el: etree._Element) -> int:
    line = el.sourceline or 0
    if 0 < line <= len(lines):
        idx = lines[line - 1].find("<" + (etree.QName(el).localname if isinstance(el.tag, str) else ""))
        return idx + 1 if idx >= 0 else 1
    return 1


def parse_pls(content: str, name: str, max_lexemes: int) -> Lexicon:
    """A PLS document -> Lexicon; PlsError(line, column, message) at the first problem."""
    raw = content.encode("utf-8")
    if _FORBIDDEN.search(raw):
        line = content[: _FORBIDDEN.search(raw).start()].count("\n") + 1  # type: ignore[union-attr]
        raise PlsError(line, 1, "DOCTYPE and entity declarations are not allowed")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (getattr(exc, "lineno", 1), 1)
        raise PlsError(line or 1, col or 1, f"malformed XML: {exc.msg}") from None
    lines = content.splitlines()

    def fail(el: etree._Element, message: str) -> PlsError:
        return PlsError(el.sourceline or 1, _column(lines, el), message)

    def local(el: etree._Element) -> str | None:
        if not isinstance(el.tag, str):
            return None
        q = etree.QName(el)
        return q.localname if q.namespace in (None, PLS_NS) else None

    if local(root) != "lexicon":
        raise fail(root, f"the root element must be <lexicon> (namespace {PLS_NS})")
    if root.get("version", "1.0") != "1.0":
        raise fail(root, "only PLS version 1.0 is supported")
    alphabet = root.get("alphabet")
    if alphabet not in ALPHABETS:
        raise fail(root, f"<lexicon> needs alphabet=\"ipa\" (got {alphabet!r})")
    language = root.get(XML_LANG)
    if not language or not re.fullmatch(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*", language):
        raise fail(root, "<lexicon> needs an xml:lang attribute such as en-US")
    entries: dict[str, Entry] = {}
    count = 0
    for lexeme in root:
        if not isinstance(lexeme.tag, str):
            continue
        if local(lexeme) == "meta" or local(lexeme) == "metadata":
            continue
        if local(lexeme) != "lexeme":
            raise fail(lexeme, f"unexpected element <{etree.QName(lexeme).localname}> (expected <lexeme>)")
        count += 1
        if count > max_lexemes:
            raise fail(lexeme, f"more than {max_lexemes} lexemes")
        graphemes: list[str] = []
        alias: str | None = None
        phoneme: str | None = None
        for child in lexeme:
            kind = local(child)
            if kind is None and not isinstance(child.tag, str):
                continue
            text = (child.text or "").strip()
            if len(child):
                raise fail(child, f"<{kind}> may contain text only")
            if kind == "grapheme":
                if not text:
                    raise fail(child, "empty <grapheme>")
                if len(text) > MAX_GRAPHEME_CHARS:
                    raise fail(child, f"<grapheme> longer than {MAX_GRAPHEME_CHARS} characters")
                graphemes.append(text)
            elif kind == "alias":
                if not text or len(text) > MAX_ALIAS_CHARS:
                    raise fail(child, f"<alias> must have 1 to {MAX_ALIAS_CHARS} characters")
                alias = alias or text
            elif kind == "phoneme":
                if child.get("alphabet", alphabet) not in ALPHABETS:
                    raise fail(child, f"unsupported phoneme alphabet {child.get('alphabet')!r} (use ipa)")
                if not clean_phonemes(text) or len(text) > MAX_PHONEME_CHARS:
                    raise fail(child, f"<phoneme> must have 1 to {MAX_PHONEME_CHARS} IPA characters")
                phoneme = phoneme or text
            elif kind != "example":
                raise fail(child, f"unexpected element <{etree.QName(child).localname}> in <lexeme>")
        if not graphemes:
            raise fail(lexeme, "<lexeme> needs at least one <grapheme>")
        if alias is None and phoneme is None:
            raise fail(lexeme, "<lexeme> needs an <alias> or a <phoneme>")
        for g in graphemes:
            # PLS: the first pronunciation is the preferred one; a phoneme wins over an alias.
            entries.setdefault(g, Entry(g, alias=None if phoneme else alias, phoneme=phoneme))
    return Lexicon(name=name, language=language, entries=entries)


class LexiconSet:
    """The lexicons one request uses, in priority order (the first lexicon naming a word wins)."""

    def __init__(self, lexicons: list[Lexicon]) -> None:
        self.lexicons = lexicons
        self._compiled: dict[str, tuple[re.Pattern[str], dict[str, Entry]] | None] = {}

    def __bool__(self) -> bool:
        return any(lx.entries for lx in self.lexicons)

    @property
    def names(self) -> list[str]:
        return [lx.name for lx in self.lexicons]

    def _for(self, language: str) -> tuple[re.Pattern[str], dict[str, Entry]] | None:
        base = base_language(language)
        if base not in self._compiled:
            table: dict[str, Entry] = {}
            for lx in self.lexicons:
                if lx.base_language == base:
                    for g, e in lx.entries.items():
                        table.setdefault(g, e)
            if not table:
                self._compiled[base] = None
            else:
                alts = "|".join(re.escape(g) for g in sorted(table, key=len, reverse=True))
                self._compiled[base] = (re.compile(r"(?<!\w)(?:" + alts + r")(?!\w)"), table)
        return self._compiled[base]

    def apply(self, text: str, language: str) -> str:
        compiled = self._for(language)
        if compiled is None:
            return text
        pattern, table = compiled
        return pattern.sub(lambda m: table[m.group(0)].spoken(), text)
