"""SSML → plan, parsed safely.

The parser never resolves entities, loads DTDs or touches the network; a DOCTYPE or ENTITY
declaration is refused before parsing (no billion laughs, no XXE). Input size, text length and
nesting depth are bounded. Unknown elements and attributes are errors that name them, with the line
and column where they occur, so `/v1/ssml/validate` can point at them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from lxml import etree

from control_plane.services.first_segment import shorten_first
from control_plane.services.normalize import NormalizeMode
from control_plane.services.normalize.say_as import SAY_AS, say_as
from control_plane.services.planning import (
    SILENT_DB,
    Plan,
    Segment,
    normalise_space,
    speakable,
    split_segment,
    written_form,
)
from control_plane.services.pls import Lexicon, LexiconSet, phoneme_block
from control_plane.services.ssml_model import (
    FORBIDDEN,
    Ctx,
    Speech,
    SsmlIssue,
    SsmlRejected,
    SsmlResult,
    safe_parser,
)
from control_plane.services.ssml_source import (
    ALLOWED_ATTRS,
    SSML_NS,
    XML_LANG,
    XML_NS,
    SourcePositions,
    element_name,
)
from control_plane.services.ssml_values import (
    BREAK_STRENGTH_MS,
    EMPHASIS,
    MAX_BREAK_MS,
    PITCH_RANGE,
    SPEED_RANGE,
    clamp,
    parse_pitch,
    parse_rate,
    parse_time_ms,
    parse_volume,
)
from tts_contract import MAX_TEXT_CHARS

MAX_SSML_BYTES = 20_000

MAX_DEPTH = 24

PARAGRAPH_PAUSE_MS = 0.0  # engines already pause at sentence ends; explicit <break> is exact


def parse_ssml(ssml: str, *, language: str = "en", voice_id: str | None = None, speed: float = 1.0,
               pitch: float = 1.0, volume_db: float = 0.0, normalize_mode: NormalizeMode = "auto",
               lexicons: LexiconSet | None = None, available: Mapping[str, Lexicon] | None = None,
               shorten_first_segment: bool = False) -> SsmlResult:
    """`lexicons`: the request's lexicons; `available`: the tenant's, by name, for `<lexicon uri="name">`.
    Text is normalised per `normalize_mode`; `<say-as>`, `<sub>` and `<phoneme>` are read as marked.
    `shorten_first_segment`: the first sentence is cut at a natural boundary inside the document's
    first text (services/first_segment.py); markup, breaks and prosody are never crossed."""
    raw = ssml.encode("utf-8")
    if len(raw) > MAX_SSML_BYTES:
        raise SsmlRejected("ssml_too_large", f"SSML is {len(raw)} bytes; the limit is {MAX_SSML_BYTES}")
    if FORBIDDEN.search(raw):
        raise SsmlRejected("ssml_forbidden", "DOCTYPE and entity declarations are not allowed in SSML")
    try:
        root = etree.fromstring(raw, safe_parser())
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (getattr(exc, "lineno", 0), 0)
        return SsmlResult(Plan([]), [SsmlIssue(line or 0, col or 0, f"malformed XML: {exc.msg}")])
    builder = _Builder(raw.decode("utf-8"), Ctx(voice_id, language, speed, pitch, volume_db),
                       Speech(normalize_mode, lexicons, available or {}))
    builder.run(root)
    return SsmlResult(Plan(builder.segments(shorten_first_segment)), builder.errors, builder.voices)


class _Builder:
    def __init__(self, source: str, ctx: Ctx, speech: Speech) -> None:
        self.speech = speech
        self.positions = SourcePositions(source)
        self.errors: list[SsmlIssue] = []
        self.voices: list[tuple[str, int, int]] = []
        self._segments: list[Segment] = []
        self._ctx = ctx
        self._text: list[str] = []
        self._marks: list[tuple[str, int]] = []
        self._pending_silence = 0.0
        self._chars = 0
        self._first_run: tuple[str, str, Ctx] | None = None  # the document's first text: written, spoken, ctx
        self._spoke = False  # some text was added already

    def _error(self, el: etree._Element, message: str, where: tuple[int, int] | None = None) -> None:
        line, col = where or self.positions.of(el)
        self.errors.append(SsmlIssue(line, col, message))

    # --- text accumulation ---
    def _add_text(self, text: str | None) -> None:
        """Written text: lexicons and normalisation apply."""
        if not text:
            return
        spoken = speakable(text, self._ctx.language, normalize_mode=self.speech.mode, lexicons=self.speech.lexicons)
        if not self._spoke and spoken.strip():
            self._spoke = True
            self._first_run = (written_form(text, self._ctx.language, self.speech.lexicons), spoken, self._ctx)
        self._text.append(spoken)

    def _add_raw(self, text: str | None) -> None:
        """Text the markup already says how to read (say-as, sub, phoneme)."""
        if text:
            self._spoke = self._spoke or bool(text.strip())
            self._text.append(text)

    def _current_text(self) -> str:
        return "".join(self._text)

    def _flush(self) -> None:
        raw = self._current_text()
        text = normalise_space(raw)
        lead = len(raw) - len(raw.lstrip())
        marks = [(n, max(0, min(len(text), off - lead))) for n, off in self._marks]
        if text:
            self._chars += len(text)
            seg = Segment(text=text, voice_id=self._ctx.voice_id, language=self._ctx.language, speed=self._ctx.speed,
                          pitch=self._ctx.pitch, volume_db=self._ctx.volume_db, marks=marks,
                          silence_before_ms=self._pending_silence)
            self._pending_silence = 0.0
            self._segments.append(seg)
        elif marks:
            # Marks with no text of their own sit at the end of the previous segment (or a silent one).
            if self._segments and not self._pending_silence:
                prev = self._segments[-1]
                prev.marks.extend((n, len(prev.text)) for n, _ in marks)
            else:
                self._segments.append(Segment(text="", language=self._ctx.language, marks=[(n, 0) for n, _ in marks],
                                              silence_before_ms=self._pending_silence))
                self._pending_silence = 0.0
        self._text = []
        self._marks = []

    def _silence(self, ms: float) -> None:
        self._flush()
        self._pending_silence += ms

    def segments(self, shorten_first_segment: bool = False) -> list[Segment]:
        self._flush()
        if self._pending_silence:
            if self._segments:
                self._segments[-1].silence_after_ms += self._pending_silence
            else:
                self._segments.append(Segment(text="", language=self._ctx.language,
                                              silence_after_ms=self._pending_silence))
        out: list[Segment] = []
        for seg in self._segments:
            out.extend(split_segment(seg))
        if shorten_first_segment and self._first_run and out and out[0].text:
            written, spoken, ctx = self._first_run
            out = shorten_first(out, written, spoken, ctx.language, self.speech.mode)
        if self._chars > MAX_TEXT_CHARS:
            self.errors.append(SsmlIssue(1, 1, f"SSML text is {self._chars} characters; the limit is {MAX_TEXT_CHARS}"))
        return out

    # --- the walk ---
    def run(self, root: etree._Element) -> None:
        self.positions.locate(root)
        name = element_name(root)
        if name != "speak":
            self._error(root, f"the root element must be <speak>, not <{name or root.tag}>")
            return
        lang = root.get(XML_LANG)
        if lang:
            self._ctx = replace(self._ctx, language=lang)
        self._check_attrs(root, "speak")
        self._use_lexicons(root)
        self._add_text(root.text)
        for child in root:
            self._visit(child, 1)
            self._add_text(child.tail)

    def _use_lexicons(self, root: etree._Element) -> None:
        """`<lexicon uri="name">` names one of the tenant's lexicons (never fetched from anywhere); it
        applies to the whole document, ahead of the request's own."""
        named: list[Lexicon] = []
        for el in root.iter(f"{{{SSML_NS}}}lexicon", "lexicon"):
            self.positions.locate(el)
            uri = (el.get("uri") or "").strip()
            name = uri.removeprefix("lexicon:").rstrip("/").rsplit("/", 1)[-1]
            if not name:
                self._error(el, "<lexicon> needs a uri attribute (the name of one of your lexicons)")
            elif name not in self.speech.available:
                self._error(el, f"lexicon '{name}' not found")
            else:
                named.append(self.speech.available[name])
        if named:
            base = self.speech.lexicons.lexicons if self.speech.lexicons else []
            self.speech.lexicons = LexiconSet(named + [lx for lx in base if lx not in named])

    def _check_attrs(self, el: etree._Element, name: str) -> bool:
        ok = True
        for attr in el.attrib:
            if attr not in ALLOWED_ATTRS[name]:
                shown = "xml:" + attr.split("}")[1] if attr.startswith(f"{{{XML_NS}}}") else attr
                self._error(el, f"unsupported attribute '{shown}' on <{name}>")
                ok = False
        return ok

    def _visit(self, el: etree._Element, depth: int) -> None:
        self.positions.locate(el)
        if depth > MAX_DEPTH:
            self._error(el, f"elements nested deeper than {MAX_DEPTH} levels")
            return
        name = element_name(el)
        if name is None or name not in ALLOWED_ATTRS:
            shown = el.tag.split("}")[-1] if isinstance(el.tag, str) else str(el.tag)
            self._error(el, f"unsupported element <{shown}>")
            return
        self._check_attrs(el, name)
        handler = getattr(self, "_el_" + name.replace("-", "_"))
        handler(el, depth)

    def _children(self, el: etree._Element, depth: int) -> None:
        self._add_text(el.text)
        for child in el:
            self._visit(child, depth + 1)
            self._add_text(child.tail)

    def _scoped(self, el: etree._Element, depth: int, ctx: Ctx, boundary: bool = True) -> None:
        if ctx != self._ctx or boundary:
            self._flush()
        saved = self._ctx
        self._ctx = ctx
        self._children(el, depth)
        if ctx != saved or boundary:
            self._flush()
        self._ctx = saved

    def _with_lang(self, el: etree._Element) -> Ctx:
        lang = el.get(XML_LANG)
        return replace(self._ctx, language=lang) if lang else self._ctx

    # --- elements ---
    def _el_p(self, el: etree._Element, depth: int) -> None:
        self._scoped(el, depth, self._with_lang(el))
        if PARAGRAPH_PAUSE_MS:
            self._pending_silence += PARAGRAPH_PAUSE_MS

    def _el_s(self, el: etree._Element, depth: int) -> None:
        self._scoped(el, depth, self._with_lang(el))

    def _el_lang(self, el: etree._Element, depth: int) -> None:
        if not el.get(XML_LANG):
            self._error(el, "<lang> needs an xml:lang attribute")
        self._scoped(el, depth, self._with_lang(el))

    def _el_voice(self, el: etree._Element, depth: int) -> None:
        name = (el.get("name") or "").strip()
        ctx = self._with_lang(el)
        if not name:
            self._error(el, "<voice> needs a name attribute (a voice id)")
        else:
            self.voices.append((name, *self.positions.of(el)))
            ctx = replace(ctx, voice_id=name)
        self._scoped(el, depth, ctx)

    def _el_break(self, el: etree._Element, depth: int) -> None:
        if len(el) or (el.text or "").strip():
            self._error(el, "<break> must be empty")
        time_attr, strength = el.get("time"), el.get("strength")
        ms = BREAK_STRENGTH_MS["medium"]
        if strength is not None:
            if strength not in BREAK_STRENGTH_MS:
                self._error(el, f"unknown break strength '{strength}' (use {', '.join(BREAK_STRENGTH_MS)})")
            ms = BREAK_STRENGTH_MS.get(strength, ms)
        if time_attr is not None:
            parsed = parse_time_ms(time_attr)
            if parsed is None or parsed < 0 or parsed > MAX_BREAK_MS:
                self._error(el, f"invalid break time '{time_attr}' (e.g. 500ms or 1.5s, at most {MAX_BREAK_MS:.0f}ms)")
            else:
                ms = parsed
        self._silence(ms)

    def _el_prosody(self, el: etree._Element, depth: int) -> None:
        ctx = self._ctx
        if (rate := el.get("rate")) is not None:
            factor = parse_rate(rate)
            if factor is None:
                self._error(el, f"invalid prosody rate '{rate}' (x-slow..x-fast, 80%, +10%, 1.2)")
            else:
                ctx = replace(ctx, speed=clamp(ctx.speed * factor, SPEED_RANGE))
        if (pitch := el.get("pitch")) is not None:
            factor = parse_pitch(pitch)
            if factor is None:
                self._error(el, f"invalid prosody pitch '{pitch}' (x-low..x-high, +10%, -2st)")
            else:
                ctx = replace(ctx, pitch=clamp(ctx.pitch * factor, PITCH_RANGE))
        if (volume := el.get("volume")) is not None:
            db = parse_volume(volume, ctx.volume_db)
            if db is None:
                self._error(el, f"invalid prosody volume '{volume}' (silent..x-loud, +6dB, -3dB)")
            else:
                ctx = replace(ctx, volume_db=db)
        self._scoped(el, depth, ctx, boundary=False)

    def _el_emphasis(self, el: etree._Element, depth: int) -> None:
        level = el.get("level", "moderate")
        if level not in EMPHASIS:
            self._error(el, f"unknown emphasis level '{level}' (strong, moderate, reduced, none)")
            level = "moderate"
        rate, db = EMPHASIS[level]
        ctx = replace(self._ctx, speed=clamp(self._ctx.speed * rate, SPEED_RANGE),
                      volume_db=max(SILENT_DB, self._ctx.volume_db + db))
        self._scoped(el, depth, ctx, boundary=False)

    def _leaf_text(self, el: etree._Element, name: str) -> str:
        if len(el):
            self._error(el, f"<{name}> may contain text only")
        return el.text or ""

    def _el_sub(self, el: etree._Element, depth: int) -> None:
        alias = el.get("alias")
        if alias is None:
            self._error(el, "<sub> needs an alias attribute")
        self._leaf_text(el, "sub")
        self._add_raw(alias if alias is not None else el.text)

    def _el_phoneme(self, el: etree._Element, depth: int) -> None:
        # IPA goes to the engine as a phoneme block (Piper speaks it; XTTS gets a respelling).
        text = self._leaf_text(el, "phoneme")
        alphabet = el.get("alphabet", "ipa")
        ph = el.get("ph")
        if alphabet != "ipa":
            self._error(el, f"unsupported phoneme alphabet '{alphabet}' (use ipa)")
        elif not ph or not ph.strip():
            self._error(el, "<phoneme> needs a ph attribute")
        else:
            self._add_raw(" " + phoneme_block(ph) + " ")
            return
        self._add_text(text)

    def _el_lexicon(self, el: etree._Element, depth: int) -> None:
        if len(el) or (el.text or "").strip():
            self._error(el, "<lexicon> must be empty")

    def _el_mark(self, el: etree._Element, depth: int) -> None:
        name = el.get("name")
        if not name:
            self._error(el, "<mark> needs a name attribute")
            return
        self._marks.append((name, len(self._current_text())))

    def _el_say_as(self, el: etree._Element, depth: int) -> None:
        text = self._leaf_text(el, "say-as").strip()
        kind = el.get("interpret-as")
        if kind not in SAY_AS:
            self._error(el, f"unsupported say-as interpret-as '{kind}' (supported: {', '.join(sorted(SAY_AS))})")
            self._add_raw(text)
            return
        try:
            spoken = say_as(kind, text, el.get("format"), self._ctx.language)
        except ValueError as exc:
            self._error(el, f"say-as {kind}: {exc}")
            spoken = text
        self._add_raw(" " + spoken + " ")


def is_finite_gain(db: float) -> bool:
    return math.isfinite(db) and db > SILENT_DB
