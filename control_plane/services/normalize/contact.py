"""Things read character by character or in groups: e-mail addresses, web addresses, phone numbers,
and order, account and reference codes."""

from __future__ import annotations

import re

from control_plane.services.normalize.numbers import cardinal, digits, grouped_digits
from control_plane.services.normalize.vocab import Vocab

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
TLDS = ("com|org|net|io|co|uk|de|fr|es|it|pt|br|gov|edu|info|biz|us|eu|ca|app|dev|ai|mx|ar|at|ch|be|nl|ie|au|nz|"
        "in|cl|pe")
URL = re.compile(r"(?<![\w@.])(?:https?://)?(?:www\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:" + TLDS
                 + r")\b(?:/[A-Za-z0-9_/?=&%#-]*(?:\.[A-Za-z0-9_/?=&%#-]+)*)?")
# +1 (555) 010-0199, 1-800-555-0199, 555-0123, +44 20 7946 0958, (555) 123 4567
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]\d{2,4}){1,4}(?![\w-])"
                   r"|(?<![\w+])\(\d{1,4}\)\s?\d{3,4}(?:[\s.-]\d{3,4})?(?![\w-])"
                   r"|(?<![\w+])\+\d{7,15}(?!\w)")
CODE_CHARS = r"[A-Za-z0-9]+(?:[-/][A-Za-z0-9]+)*"
MIXED_CODE = re.compile(r"(?<![\w-])(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9]+(?:-[A-Z0-9]+)*(?![\w-])")
_RUN = re.compile(r"[A-Za-z]+|\d+|[-/]")
_EMAIL_SPLIT = re.compile(r"([._+-])")
_SEP_WORDS = {".": "dot", "_": "underscore", "-": "dash", "+": "plus"}


def spell_code(code: str, v: Vocab) -> str:
    """"A-10293" -> "A, one zero two nine three"; short letter runs are spelled, long ones read as words,
    digit runs of one or two (no leading zero) read as numbers, longer ones digit by digit."""
    out: list[str] = []
    for run in _RUN.findall(code):
        if run in "-/":
            if out:
                out[-1] += ","
            continue
        if run.isdigit():
            if len(run) <= 2 and not run.startswith("0") and len(code) <= 4:
                out.append(cardinal(int(run), v.lang))
            else:
                out.append(digits(run, v.lang))
        elif len(run) >= 4 and run.isalpha() and not run.isupper():
            out.append(run)
        else:
            out.append(" ".join(run.upper()))
    return " ".join(out).strip(", ")


def _word_part(part: str, v: Vocab) -> str:
    if part.isdigit():
        return digits(part, v.lang)
    if any(c.isdigit() for c in part):
        return spell_code(part, v)
    return part.lower()


def say_email(m: re.Match[str], v: Vocab) -> str:
    local, domain = m.group(0).rsplit("@", 1)
    words = []
    for piece in _EMAIL_SPLIT.split(local):
        if not piece:
            continue
        words.append(v.words[_SEP_WORDS[piece]] if piece in _SEP_WORDS else _word_part(piece, v))
    domain_words = f" {v.words['dot']} ".join(_word_part(p, v) for p in domain.split("."))
    return f" {' '.join(words)} {v.words['at']} {domain_words} "


def say_url(m: re.Match[str], v: Vocab) -> str:
    text = re.sub(r"^https?://", "", m.group(0))
    host, _, path = text.partition("/")
    parts = []
    for p in host.split("."):
        parts.append("w w w" if p.lower() == "www" else _word_part(p, v))
    spoken = f" {v.words['dot']} ".join(parts)
    for seg in [s for s in path.split("/") if s]:
        spoken += f" {v.words['slash']} " + " ".join(_word_part(w, v) for w in re.split(r"[-_.?=&%#]+", seg) if w)
    return f" {spoken} "


def say_phone(m: re.Match[str], v: Vocab) -> str | None:
    raw = m.group(0)
    ds = re.sub(r"\D", "", raw)
    groups = re.findall(r"\d+", raw)
    plus = raw.lstrip().startswith("+")
    if not 7 <= len(ds) <= 15:
        return None
    seps = re.findall(r"[\s.-]", raw.strip())
    if not plus and "(" not in raw:
        if len(groups) < 2 and len(ds) < 10:
            return None
        # "1 234 567" and "1.234.567" are numbers with thousands separators, not phones.
        if all(len(g) == 3 for g in groups[1:]) and len(groups[0]) <= 3 and set(seps) <= {" ", "."} and \
                len(groups) > 2 and " " not in raw.strip()[:1]:
            return None
    words = [grouped_digits(g, v.lang) if len(g) > 4 else digits(g, v.lang) for g in groups]
    return " " + (v.words["plus"] + " " if plus else "") + ", ".join(words) + " "


def id_pattern(v: Vocab) -> re.Pattern[str]:
    keys = "|".join(re.escape(k) for k in sorted(v.id_keywords, key=len, reverse=True) if k != "#")
    # "order #A-10293", "account number: 12345678", "ref. XK-4471", "#A-10293"
    return re.compile(
        r"(?:(?<!\w)(?P<key>(?:" + keys + r"))\.?(?:\s+(?:" + re.escape(v.words["number"]) + r"|no\.?|num\.?|nr\.?"
        r"|n\.?º|n°))?\s*[:#]?\s*|(?<![\w&])#\s?)(?P<code>(?=[A-Za-z0-9-]*\d)" + CODE_CHARS + r")(?![\w-])",
        re.IGNORECASE)


def say_id(m: re.Match[str], v: Vocab) -> str:
    key = m.group("key")
    head = m.group(0)[: m.start("code") - m.start(0)]
    if key:
        lead = head.rstrip(" :#")
        lead = re.sub(r"#", v.words["number"], lead)
        if "#" in head and v.words["number"].lower() not in lead.lower():
            lead += " " + v.words["number"]
        return f"{lead} {spell_code(m.group('code'), v)}"
    return f"{v.words['number']} {spell_code(m.group('code'), v)}"
