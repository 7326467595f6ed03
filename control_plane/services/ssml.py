"""SSML → plan, parsed safely.

The parser never resolves entities, loads DTDs or touches the network; a DOCTYPE or ENTITY
declaration is refused before parsing (no billion laughs, no XXE). Input size, text length and
nesting depth are bounded. Unknown elements and attributes are errors that name them, with the line
and column where they occur, so `/v1/ssml/validate` can point at them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from lxml import etree
from num2words import num2words

from control_plane.services.planning import SILENT_DB, Plan, Segment, normalise_space, split_segment

SSML_NS = "http://www.w3.org/2001/10/synthesis"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XML_LANG = f"{{{XML_NS}}}lang"

MAX_SSML_BYTES = 20_000
MAX_TEXT_CHARS = 5_000
MAX_DEPTH = 24
MAX_BREAK_MS = 10_000.0
SPEED_RANGE = (0.5, 2.0)
PITCH_RANGE = (0.5, 2.0)

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
}
SAY_AS = {"cardinal", "number", "ordinal", "digits", "characters", "spell-out", "verbatim", "date", "time",
          "telephone", "currency"}
BREAK_STRENGTH_MS = {"none": 0.0, "x-weak": 100.0, "weak": 250.0, "medium": 400.0, "strong": 750.0, "x-strong": 1200.0}
RATE_WORDS = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.75}
PITCH_WORDS = {"x-low": 0.8, "low": 0.9, "medium": 1.0, "default": 1.0, "high": 1.1, "x-high": 1.2}
VOLUME_WORDS = {"silent": SILENT_DB, "x-soft": -12.0, "soft": -6.0, "medium": 0.0, "default": 0.0, "loud": 6.0,
                "x-loud": 12.0}
EMPHASIS = {"strong": (0.9, 3.0), "moderate": (0.95, 1.5), "none": (1.0, 0.0), "reduced": (1.05, -3.0)}
PARAGRAPH_PAUSE_MS = 0.0  # engines already pause at sentence ends; explicit <break> is exact
CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}


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
class _Ctx:
    voice_id: str | None
    language: str
    speed: float
    pitch: float
    volume_db: float


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=True, remove_pis=True,
    )


_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


def parse_ssml(ssml: str, *, language: str = "en", voice_id: str | None = None, speed: float = 1.0,
               pitch: float = 1.0, volume_db: float = 0.0) -> SsmlResult:
    raw = ssml.encode("utf-8")
    if len(raw) > MAX_SSML_BYTES:
        raise SsmlRejected("ssml_too_large", f"SSML is {len(raw)} bytes; the limit is {MAX_SSML_BYTES}")
    if _FORBIDDEN.search(raw):
        raise SsmlRejected("ssml_forbidden", "DOCTYPE and entity declarations are not allowed in SSML")
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (getattr(exc, "lineno", 0), 0)
        return SsmlResult(Plan([]), [SsmlIssue(line or 0, col or 0, f"malformed XML: {exc.msg}")])
    builder = _Builder(raw.decode("utf-8"), _Ctx(voice_id, language, speed, pitch, volume_db))
    builder.run(root)
    return SsmlResult(Plan(builder.segments()), builder.errors, builder.voices)


class _Builder:
    def __init__(self, source: str, ctx: _Ctx) -> None:
        self.lines = source.splitlines()
        self.errors: list[SsmlIssue] = []
        self.voices: list[tuple[str, int, int]] = []
        self._segments: list[Segment] = []
        self._ctx = ctx
        self._text: list[str] = []
        self._marks: list[tuple[str, int]] = []
        self._pending_silence = 0.0
        self._chars = 0
        self._seen: dict[tuple[int, str], int] = {}
        self._pos: dict[etree._Element, tuple[int, int]] = {}

    # --- positions ---
    def _where(self, el: etree._Element) -> tuple[int, int]:
        line = el.sourceline or 0
        tag = el.tag if isinstance(el.tag, str) else ""
        qname = tag.split("}")[-1]
        if el.prefix:
            qname = f"{el.prefix}:{qname}"
        col = 0
        if 0 < line <= len(self.lines):
            n = self._seen.get((line, qname), 0)
            idx = -1
            for _ in range(n + 1):
                idx = self.lines[line - 1].find("<" + qname, idx + 1)
                if idx < 0:
                    break
            self._seen[(line, qname)] = n + 1
            col = idx + 1 if idx >= 0 else 1
        return line, col

    def _error(self, el: etree._Element, message: str, where: tuple[int, int] | None = None) -> None:
        line, col = where or self._pos.get(el) or self._where(el)
        self.errors.append(SsmlIssue(line, col, message))

    # --- text accumulation ---
    def _add_text(self, text: str | None) -> None:
        if not text:
            return
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

    def segments(self) -> list[Segment]:
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
        if self._chars > MAX_TEXT_CHARS:
            self.errors.append(SsmlIssue(1, 1, f"SSML text is {self._chars} characters; the limit is {MAX_TEXT_CHARS}"))
        return out

    # --- the walk ---
    def run(self, root: etree._Element) -> None:
        self._pos[root] = self._where(root)
        name = self._name(root)
        if name != "speak":
            self._error(root, f"the root element must be <speak>, not <{name or root.tag}>")
            return
        lang = root.get(XML_LANG)
        if lang:
            self._ctx = replace(self._ctx, language=lang)
        self._check_attrs(root, "speak")
        self._add_text(root.text)
        for child in root:
            self._visit(child, 1)
            self._add_text(child.tail)

    def _name(self, el: etree._Element) -> str | None:
        if not isinstance(el.tag, str):
            return None
        q = etree.QName(el)
        if q.namespace not in (None, SSML_NS):
            return None
        return q.localname

    def _check_attrs(self, el: etree._Element, name: str) -> bool:
        ok = True
        for attr in el.attrib:
            if attr not in ALLOWED_ATTRS[name]:
                shown = "xml:" + attr.split("}")[1] if attr.startswith(f"{{{XML_NS}}}") else attr
                self._error(el, f"unsupported attribute '{shown}' on <{name}>")
                ok = False
        return ok

    def _visit(self, el: etree._Element, depth: int) -> None:
        self._pos[el] = self._where(el)
        if depth > MAX_DEPTH:
            self._error(el, f"elements nested deeper than {MAX_DEPTH} levels")
            return
        name = self._name(el)
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

    def _scoped(self, el: etree._Element, depth: int, ctx: _Ctx, boundary: bool = True) -> None:
        if ctx != self._ctx or boundary:
            self._flush()
        saved = self._ctx
        self._ctx = ctx
        self._children(el, depth)
        if ctx != saved or boundary:
            self._flush()
        self._ctx = saved

    def _with_lang(self, el: etree._Element) -> _Ctx:
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
            self.voices.append((name, *self._pos[el]))
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
            parsed = _parse_time_ms(time_attr)
            if parsed is None or parsed < 0 or parsed > MAX_BREAK_MS:
                self._error(el, f"invalid break time '{time_attr}' (e.g. 500ms or 1.5s, at most {MAX_BREAK_MS:.0f}ms)")
            else:
                ms = parsed
        self._silence(ms)

    def _el_prosody(self, el: etree._Element, depth: int) -> None:
        ctx = self._ctx
        if (rate := el.get("rate")) is not None:
            factor = _parse_rate(rate)
            if factor is None:
                self._error(el, f"invalid prosody rate '{rate}' (x-slow..x-fast, 80%, +10%, 1.2)")
            else:
                ctx = replace(ctx, speed=_clamp(ctx.speed * factor, SPEED_RANGE))
        if (pitch := el.get("pitch")) is not None:
            factor = _parse_pitch(pitch)
            if factor is None:
                self._error(el, f"invalid prosody pitch '{pitch}' (x-low..x-high, +10%, -2st)")
            else:
                ctx = replace(ctx, pitch=_clamp(ctx.pitch * factor, PITCH_RANGE))
        if (volume := el.get("volume")) is not None:
            db = _parse_volume(volume, ctx.volume_db)
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
        ctx = replace(self._ctx, speed=_clamp(self._ctx.speed * rate, SPEED_RANGE),
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
        self._add_text(alias if alias is not None else el.text)

    def _el_phoneme(self, el: etree._Element, depth: int) -> None:
        # The engines read text, not phonemes: the element's text is spoken.
        self._add_text(self._leaf_text(el, "phoneme"))

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
            self._add_text(text)
            return
        try:
            spoken = say_as(kind, text, el.get("format"), self._ctx.language)
        except ValueError as exc:
            self._error(el, f"say-as {kind}: {exc}")
            spoken = text
        self._add_text(" " + spoken + " ")


# --- attribute parsing ------------------------------------------------------------------------


def _clamp(v: float, bounds: tuple[float, float]) -> float:
    return round(min(max(v, bounds[0]), bounds[1]), 4)


def _parse_time_ms(value: str) -> float | None:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", value)
    if not m:
        return None
    return float(m.group(1)) * (1000.0 if m.group(2) == "s" else 1.0)


def _parse_rate(value: str) -> float | None:
    v = value.strip()
    if v in RATE_WORDS:
        return RATE_WORDS[v]
    if m := re.fullmatch(r"([+-])(\d+(?:\.\d+)?)%", v):
        f = 1 + (float(m.group(2)) / 100) * (1 if m.group(1) == "+" else -1)
        return f if f > 0 else None
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)%", v):
        f = float(m.group(1)) / 100
        return f if f > 0 else None
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)", v):
        f = float(m.group(1))
        return f if f > 0 else None
    return None


def _parse_pitch(value: str) -> float | None:
    v = value.strip()
    if v in PITCH_WORDS:
        return PITCH_WORDS[v]
    if m := re.fullmatch(r"([+-]?)(\d+(?:\.\d+)?)st", v):
        return 2.0 ** ((-1 if m.group(1) == "-" else 1) * float(m.group(2)) / 12.0)
    if m := re.fullmatch(r"([+-])(\d+(?:\.\d+)?)%", v):
        f = 1 + (float(m.group(2)) / 100) * (1 if m.group(1) == "+" else -1)
        return f if f > 0 else None
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)%", v):
        f = float(m.group(1)) / 100
        return f if f > 0 else None
    return None


def _parse_volume(value: str, current: float) -> float | None:
    v = value.strip()
    if v in VOLUME_WORDS:
        return VOLUME_WORDS[v] if v != "default" else current
    if m := re.fullmatch(r"([+-])(\d+(?:\.\d+)?)dB", v):
        return max(SILENT_DB, current + (float(m.group(2)) * (1 if m.group(1) == "+" else -1)))
    return None


# --- say-as ---------------------------------------------------------------------------------


def _n2w(value: float | int, lang: str, **kw: object) -> str:
    base = lang.split("-")[0].lower()
    try:
        return num2words(value, lang=base, **kw)
    except (NotImplementedError, OverflowError, KeyError, TypeError):
        return num2words(value, lang="en", **kw)


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def say_as(kind: str, text: str, fmt: str | None, language: str) -> str:
    if kind in ("cardinal", "number"):
        n = _number(text)
        return _n2w(n, language)
    if kind == "ordinal":
        n = int(_number(re.sub(r"(st|nd|rd|th)$", "", text.strip())))
        return _n2w(n, language, to="ordinal")
    if kind == "digits":
        digits = re.sub(r"\D", "", text)
        if not digits:
            raise ValueError("no digits")
        return " ".join(_n2w(int(d), language) for d in digits)
    if kind in ("characters", "spell-out", "verbatim"):
        return " ".join(c for c in text if not c.isspace())
    if kind == "telephone":
        groups = re.findall(r"\+|\d+", text)
        if not any(g.isdigit() for g in groups):
            raise ValueError("no digits")
        words = []
        for g in groups:
            words.append("plus" if g == "+" else " ".join(_n2w(int(d), language) for d in g))
        return ", ".join(words)
    if kind == "date":
        return _say_date(text, fmt or "ymd", language)
    if kind == "time":
        return _say_time(text, fmt, language)
    if kind == "currency":
        return _say_currency(text, language)
    raise ValueError(f"unsupported interpretation {kind}")


def _number(text: str) -> float | int:
    t = text.strip().replace(",", "")
    if not re.fullmatch(r"-?\d+(\.\d+)?", t):
        raise ValueError(f"'{text}' is not a number")
    return float(t) if "." in t else int(t)


def _say_date(text: str, fmt: str, language: str) -> str:
    parts = [p for p in re.split(r"[-/.\s]+", text.strip()) if p]
    if len(parts) != len(fmt) or not all(p.isdigit() for p in parts) or not re.fullmatch(r"[dmy]{1,3}", fmt):
        raise ValueError(f"'{text}' does not match format '{fmt}'")
    fields = dict(zip(fmt, (int(p) for p in parts), strict=True))
    out = []
    if "m" in fields:
        if not 1 <= fields["m"] <= 12:
            raise ValueError(f"month {fields['m']} out of range")
        out.append(MONTHS[fields["m"] - 1])
    if "d" in fields:
        if not 1 <= fields["d"] <= 31:
            raise ValueError(f"day {fields['d']} out of range")
        out.append(_n2w(fields["d"], language, to="ordinal"))
    if "y" in fields:
        out.append(_n2w(fields["y"], language, to="year"))
    return " ".join(out)


def _say_time(text: str, fmt: str | None, language: str) -> str:
    m = re.fullmatch(r"\s*(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*([aApP][mM])?\s*", text)
    if not m:
        raise ValueError(f"'{text}' is not a time (hh:mm[:ss] [am|pm])")
    h, mi = int(m.group(1)), int(m.group(2) or 0)
    suffix = (m.group(4) or "").lower()
    if h > 23 or mi > 59 or (suffix and not 1 <= h <= 12):
        raise ValueError(f"'{text}' is out of range")
    words = _n2w(h, language)
    if mi:
        words += (" oh " if mi < 10 else " ") + _n2w(mi, language)
    elif not suffix and fmt != "hms12":
        words += " hundred" if language.startswith("en") and h else ""
    if suffix:
        words += " " + " ".join(suffix.upper())
    return words


def _say_currency(text: str, language: str) -> str:
    t = text.strip().replace(",", "")
    m = re.fullmatch(r"([$€£¥])?\s*([A-Z]{3})?\s*(-?\d+(?:\.\d{1,2})?)\s*([A-Z]{3})?", t)
    if not m:
        raise ValueError(f"'{text}' is not an amount (e.g. $12.50, 12.50 EUR)")
    code = CURRENCY_SYMBOLS.get(m.group(1) or "") or m.group(2) or m.group(4) or "USD"
    amount = float(m.group(3))
    try:
        return num2words(amount, lang=language.split("-")[0].lower(), to="currency", currency=code)
    except (NotImplementedError, KeyError, TypeError):
        return num2words(amount, lang="en", to="currency", currency=code)


def is_finite_gain(db: float) -> bool:
    return math.isfinite(db) and db > SILENT_DB
