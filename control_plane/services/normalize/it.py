"""Italian: day/month/year, decimal comma, "dodici euro e cinquanta centesimi", "quattordici e trenta"."""

from __future__ import annotations

from control_plane.services.normalize.numbers import cardinal
from control_plane.services.normalize.vocab import Currency, Vocab

MONTHS = ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre",
          "novembre", "dicembre")


def say_date(day: int, month: int, yr: int | None, locale: str) -> str:
    d = "primo" if day == 1 else cardinal(day, "it")
    out = f"{d} {MONTHS[month - 1]}"
    return f"{out} {cardinal(yr, 'it')}" if yr is not None else out


def say_time(hour: int, minute: int, suffix: str) -> str:
    h = "l'una" if hour == 1 else cardinal(hour, "it")
    return h if minute == 0 else f"{h} e {cardinal(minute, 'it')}"


VOCAB = Vocab(
    lang="it", decimal_sep=",", months=MONTHS,
    month_abbr={"gen": 1, "feb": 2, "mar": 3, "apr": 4, "mag": 5, "giu": 6, "lug": 7, "ago": 8, "set": 9, "ott": 10,
                "nov": 11, "dic": 12},
    weekday_abbr={"lun": "lunedì", "mar": "martedì", "mer": "mercoledì", "gio": "giovedì", "ven": "venerdì",
                  "sab": "sabato", "dom": "domenica"},
    currencies={"EUR": Currency("euro", "euro", "centesimo", "centesimi"),
                "USD": Currency("dollaro", "dollari", "centesimo", "centesimi"),
                "GBP": Currency("sterlina", "sterline", "penny", "pence"),
                "CHF": Currency("franco svizzero", "franchi svizzeri", "centesimo", "centesimi")},
    amount_and="e", percent="per cento",
    units={"km": ("chilometro", "chilometri"), "m": ("metro", "metri"), "cm": ("centimetro", "centimetri"),
           "kg": ("chilo", "chili"), "g": ("grammo", "grammi"), "mg": ("milligrammo", "milligrammi"),
           "ml": ("millilitro", "millilitri"), "l": ("litro", "litri"), "GB": ("gigabyte", "gigabyte"),
           "MB": ("megabyte", "megabyte"), "h": ("ora", "ore"), "min": ("minuto", "minuti"),
           "°C": ("grado", "gradi"), "km/h": ("chilometro orario", "chilometri orari")},
    words={"at": "chiocciola", "dot": "punto", "dash": "trattino", "underscore": "trattino basso", "plus": "più",
           "slash": "barra", "colon": "due punti", "number": "numero", "to": "a", "and": "e", "degrees": "gradi",
           "hash": "numero", "per": "per", "through": "a"},
    id_keywords=("ordine", "conto", "riferimento", "numero", "pratica", "fattura", "polizza", "codice", "n", "#"),
    say_date=say_date, say_time=say_time, ordinal_suffix=r"(?:º|°)", feminine_ordinal="ª",
    abbreviations=(
        (r"\bSig\.ra\b", "signora"), (r"\bSig\.(?=\s)", "signor"), (r"\bDott\.ssa\b", "dottoressa"),
        (r"\bDott\.(?=\s)", "dottor"), (r"\bP\.zza\b", "piazza"), (r"\bC\.so\b", "corso"),
        (r"\bn\.(?=\s*\d)", "numero"), (r"\b[Tt]el\.(?=\s*[\d+])", "telefono"), (r"\becc\.", "eccetera"),
        (r"\bca\.(?=\s)", "circa"),
    ),
)
