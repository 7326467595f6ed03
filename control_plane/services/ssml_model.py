"""What the SSML parser returns and carries while it walks: results, issues, scoped context."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from control_plane.services.normalize import NormalizeMode
from control_plane.services.planning import Plan
from control_plane.services.pls import Lexicon, LexiconSet


class SsmlRejected(ValueError):
    """Input refused before parsing (DOCTYPE/entities, size): a 4xx without line-level detail."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SsmlIssue:
    line: int
    column: int
    message: str


@dataclass
class SsmlResult:
    plan: Plan
    errors: list[SsmlIssue]
    voices: list[tuple[str, int, int]] = field(default_factory=list)  # (voice name, line, column)

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Ctx:
    voice_id: str | None
    language: str
    speed: float
    pitch: float
    volume_db: float


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=True, remove_pis=True,
    )


FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


@dataclass
class Speech:
    mode: NormalizeMode
    lexicons: LexiconSet | None
    available: Mapping[str, Lexicon]
