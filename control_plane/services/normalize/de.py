"""German: day.month.year, decimal comma, "zwölf Euro fünfzig", "vierzehn Uhr dreißig"."""

from __future__ import annotations

from control_plane.services.normalize.numbers import cardinal, ordinal, year
from control_plane.services.normalize.vocab import Currency, Vocab

MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
          "November", "Dezember")


def say_date(day: int, month: int, yr: int | None, locale: str) -> str:
    out = f"{ordinal(day, 'de')}r {MONTHS[month - 1]}"  # "fünfter Januar" (nominative)
    return f"{out} {year(yr, 'de')}" if yr is not None else out


def say_time(hour: int, minute: int, suffix: str) -> str:
    h = "ein" if hour == 1 else cardinal(hour, "de")
    return f"{h} Uhr" if minute == 0 else f"{h} Uhr {cardinal(minute, 'de')}"


VOCAB = Vocab(
    lang="de", decimal_sep=",", months=MONTHS,
    month_abbr={"jan": 1, "feb": 2, "mär": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
                "okt": 10, "nov": 11, "dez": 12},
    weekday_abbr={"mo": "Montag", "di": "Dienstag", "mi": "Mittwoch", "do": "Donnerstag", "fr": "Freitag",
                  "sa": "Samstag", "so": "Sonntag"},
    currencies={"EUR": Currency("Euro", "Euro", "Cent", "Cent"), "USD": Currency("Dollar", "Dollar", "Cent", "Cent"),
                "GBP": Currency("Pfund", "Pfund", "Penny", "Pence"),
                "CHF": Currency("Franken", "Franken", "Rappen", "Rappen")},
    amount_and="und", percent="Prozent",
    units={"km": ("Kilometer", "Kilometer"), "m": ("Meter", "Meter"), "cm": ("Zentimeter", "Zentimeter"),
           "kg": ("Kilogramm", "Kilogramm"), "g": ("Gramm", "Gramm"), "mg": ("Milligramm", "Milligramm"),
           "ml": ("Milliliter", "Milliliter"), "l": ("Liter", "Liter"), "GB": ("Gigabyte", "Gigabyte"),
           "MB": ("Megabyte", "Megabyte"), "h": ("Stunde", "Stunden"), "Std": ("Stunde", "Stunden"),
           "min": ("Minute", "Minuten"), "°C": ("Grad", "Grad"), "km/h": ("Kilometer pro Stunde",
                                                                           "Kilometer pro Stunde")},
    words={"at": "ät", "dot": "Punkt", "dash": "Bindestrich", "underscore": "Unterstrich", "plus": "plus",
           "slash": "Schrägstrich", "colon": "Doppelpunkt", "number": "Nummer", "to": "bis", "and": "und",
           "degrees": "Grad", "hash": "Nummer", "per": "pro", "through": "bis"},
    id_keywords=("Bestellung", "Bestellnummer", "Konto", "Kundennummer", "Referenz", "Nummer", "Rechnung",
                 "Vertrag", "Code", "Nr", "#"),
    # "am fünfter Januar" -> "am fünften Januar": the date after a preposition takes the dative.
    fixups=((r"\b(am|vom|zum|bis zum|ab dem|seit dem|bis)\s+(\w+te)r\b", r"\1 \2n"),),
    say_date=say_date, say_time=say_time, ordinal_suffix=r"\.(?=\s+(?:" + "|".join(MONTHS) + r"))",
    abbreviations=(
        (r"\bDr\.(?=\s)", "Doktor"), (r"\bHr\.(?=\s)", "Herr"), (r"\bFr\.(?=\s+[A-Z])", "Frau"),
        (r"(?<=\w)str\.(?=\s|$|,)", "straße"), (r"\bStr\.(?=\s|$|,)", "Straße"), (r"\bNr\.(?=\s*\d)", "Nummer"),
        (r"\bz\. ?B\.", "zum Beispiel"), (r"\busw\.", "und so weiter"), (r"\bbzw\.", "beziehungsweise"),
        (r"\bca\.(?=\s)", "circa"), (r"\b[Tt]el\.(?=\s*[\d+])", "Telefon"), (r"\binkl\.", "inklusive"),
        (r"\bd\. ?h\.", "das heißt"), (r"\bUhr\b", "Uhr"),
    ),
)
