"""The synthesis plan: what SSML and plain text both become.

A plan is an ordered list of segments; each is one engine call (one sentence or a piece of one
within the language's length limit) with its prosody and the exact silences around it. The plan's
canonical JSON is part of the cache key, so two requests that say the same thing share audio.

Segment text is the spoken form: the tenant's lexicons applied, then normalised (numbers, dates,
codes written out; see control_plane/services/normalize). That is the text engines read, the text
billed, and what `/v1/ssml/validate` shows.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from control_plane.services.first_segment import shorten_first
from control_plane.services.normalize import NormalizeMode, normalize
from control_plane.services.normalize.ipa import escape_markup
from tts_contract import char_limit, split_text

if TYPE_CHECKING:
    from control_plane.services.pls import LexiconSet

# Rough speaking rate for estimates (characters per second at speed 1.0).
CHARS_PER_SECOND = 14.0
SILENT_DB = -120.0  # volume "silent": below this the segment is rendered as zeros

_WS = re.compile(r"\s+")


@dataclass
class Segment:
    text: str
    voice_id: str | None = None  # None: the request's voice
    language: str = "en"
    speed: float = 1.0
    pitch: float = 1.0
    volume_db: float = 0.0
    silence_before_ms: float = 0.0
    silence_after_ms: float = 0.0
    marks: list[tuple[str, int]] = field(default_factory=list)  # (name, character offset in text)
    joins_next: bool = False  # the sentence goes on in the next segment (a shortened first segment)


@dataclass
class Plan:
    segments: list[Segment]

    @property
    def billed_characters(self) -> int:
        # The space a shortened first segment leaves out is still part of what was asked for.
        return sum(len(s.text) + s.joins_next for s in self.segments)

    @property
    def voice_ids(self) -> set[str]:
        return {s.voice_id for s in self.segments if s.voice_id}

    def estimated_duration_s(self) -> float:
        total = 0.0
        for s in self.segments:
            total += (s.silence_before_ms + s.silence_after_ms) / 1000.0
            if s.text:
                total += len(s.text) / (CHARS_PER_SECOND * max(s.speed, 0.1))
        return round(total, 3)

    def canonical_json(self) -> str:
        return json.dumps([asdict(s) for s in self.segments], sort_keys=True, separators=(",", ":"))


def normalise_space(text: str) -> str:
    return _WS.sub(" ", text).strip()


def split_segment(seg: Segment) -> list[Segment]:
    """One planned run of text → segments within the language's length limit; marks follow their text."""
    if not seg.text:
        return [seg]
    pieces = split_text(seg.text, char_limit(seg.language))
    if len(pieces) <= 1:
        return [seg]
    out: list[Segment] = []
    for i, (start, piece) in enumerate(pieces):
        end = pieces[i + 1][0] if i + 1 < len(pieces) else len(seg.text) + 1
        marks = [(n, max(0, min(len(piece), off - start))) for n, off in seg.marks if start <= off < end or (
            i == 0 and off < start)]
        out.append(
            Segment(
                text=piece, voice_id=seg.voice_id, language=seg.language, speed=seg.speed, pitch=seg.pitch,
                volume_db=seg.volume_db, marks=marks,
                silence_before_ms=seg.silence_before_ms if i == 0 else 0.0,
                silence_after_ms=seg.silence_after_ms if i == len(pieces) - 1 else 0.0,
            )
        )
    return out


def written_form(text: str, language: str, lexicons: LexiconSet | None = None) -> str:
    """Written text with the tenant's lexicon entries applied (a tenant's word wins over any rule)."""
    text = escape_markup(text)
    if lexicons:
        text = lexicons.apply(text, language)
    return text


def speakable(text: str, language: str, *, normalize_mode: NormalizeMode = "auto",
              lexicons: LexiconSet | None = None, locale: str | None = None) -> str:
    """Written text -> what the engine should read: lexicon entries first, then normalisation.
    Raises NormalizationUnavailable for mode "on" in a language without rules."""
    return normalize(written_form(text, language, lexicons), language, normalize_mode, locale)


def plan_text(text: str, *, language: str, voice_id: str | None = None, speed: float = 1.0, pitch: float = 1.0,
              volume_db: float = 0.0, normalize_mode: NormalizeMode = "auto",
              lexicons: LexiconSet | None = None, shorten_first_segment: bool = False) -> Plan:
    """`shorten_first_segment`: cut the first sentence at its first natural boundary
    (services/first_segment.py) so that its audio starts sooner."""
    written = written_form(text, language, lexicons)
    spoken = normalise_space(normalize(written, language, normalize_mode))
    if not spoken:
        return Plan([])
    base = Segment(text=spoken, voice_id=voice_id, language=language, speed=speed, pitch=pitch, volume_db=volume_db)
    segments = split_segment(base)
    if shorten_first_segment:
        segments = shorten_first(segments, written, spoken, language, normalize_mode)
    return Plan(segments)
