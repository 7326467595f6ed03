"""English: en-US by default (month/day/year, "one hundred twenty"), en-GB and others day/month/year."""

from __future__ import annotations

import re
from collections.abc import Callable

from control_plane.services.normalize.numbers import cardinal, ordinal, year
from control_plane.services.normalize.vocab import Currency, Vocab

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
MONTH_ABBR = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10,
              "nov": 11, "dec": 12}
WEEKDAYS = {"mon": "Monday", "tue": "Tuesday", "tues": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
            "thur": "Thursday", "thurs": "Thursday", "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}


def say_date(day: int, month: int, yr: int | None, locale: str) -> str:
    m = MONTHS[month - 1]
    d = ordinal(day, locale)
    day_first = locale.lower().endswith(("gb", "uk", "ie", "au", "nz", "in"))
    out = f"the {d} of {m}" if day_first else f"{m} {d}"
    return f"{out} {year(yr, locale)}" if yr is not None else out


def say_time(hour: int, minute: int, suffix: str) -> str:
    h = cardinal(hour, "en")
    if minute == 0:
        words = h if suffix else ("twelve noon" if hour == 12 else f"{h} o'clock" if hour else "midnight")
    elif minute < 10:
        words = f"{h} oh {cardinal(minute, 'en')}"
    else:
        words = f"{h} {cardinal(minute, 'en')}"
    return f"{words} {' '.join(suffix.upper())}" if suffix else words


UNITS = {
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"), "mcg": ("microgram", "micrograms"), "µg": ("microgram", "micrograms"),
    "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"), "l": ("liter", "liters"),
    "L": ("liter", "liters"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "ft": ("foot", "feet"), "in": ("inch", "inches"), "mi": ("mile", "miles"), "mph": ("mile per hour",
    "miles per hour"), "km/h": ("kilometer per hour", "kilometers per hour"), "°C": ("degree Celsius",
    "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"), "GB": ("gigabyte", "gigabytes"),
    "MB": ("megabyte", "megabytes"), "TB": ("terabyte", "terabytes"), "kB": ("kilobyte", "kilobytes"),
    "KB": ("kilobyte", "kilobytes"), "Mbps": ("megabit per second", "megabits per second"),
    "Gbps": ("gigabit per second", "gigabits per second"), "GHz": ("gigahertz", "gigahertz"),
    "MHz": ("megahertz", "megahertz"), "kWh": ("kilowatt hour", "kilowatt hours"), "kW": ("kilowatt", "kilowatts"),
    "W": ("watt", "watts"), "V": ("volt", "volts"), "hrs": ("hour", "hours"), "hr": ("hour", "hours"),
    "h": ("hour", "hours"), "min": ("minute", "minutes"), "mins": ("minute", "minutes"), "sec": ("second", "seconds"),
    "ms": ("millisecond", "milliseconds"),
}

# Titles before a name lose their dot (so no sentence break follows "Doctor"); street types after a
# name read as the street type. "St." is Saint before a capitalised name, Street after one.
_END = r"(?=\s|$|[,;:!?)])"
_AFTER_NAME = re.compile(r"(?:(?<=[^.!?\s]\s)[A-Z][A-Za-z'-]*|\d+(?:st|nd|rd|th)?)\s+$")


def place_or_title(place: str, title: str) -> Callable[[re.Match[str]], str]:
    """"St."/"Dr." after a street's name ("42 Oak St.", "Elm Dr.") is the street type; otherwise, before
    a name, it is the title ("Dr. Smith", "St. Mary's"). A capitalised word that starts the sentence
    is not a street's name ("Call Dr. Jones")."""

    def choose(m: re.Match[str]) -> str:
        before = m.string[: m.start()]
        after = m.string[m.end():]
        if _AFTER_NAME.search(before[-60:]):
            ends = m.group(0).endswith(".") and (not after.strip() or re.match(r"\s+[A-Z]", after))
            return place + ("." if ends else "")
        if re.match(r"\s+[A-Z]", after):
            return title
        return place + ("." if m.group(0).endswith(".") and not after.strip() else "")

    return choose


ABBREVIATIONS: tuple[tuple[str, str | Callable[[re.Match[str]], str]], ...] = (
    (r"\bSt\b\.?(?=\s|$|[,;:!?)])", place_or_title("Street", "Saint")),
    (r"\bDr\b\.?(?=\s|$|[,;:!?)])", place_or_title("Drive", "Doctor")),
    (r"\bMrs\.?(?=\s+[A-Z])", "Missus"),
    (r"\bMr\.?(?=\s+[A-Z])", "Mister"),
    (r"\bMs\.?(?=\s+[A-Z])", "Miz"),
    (r"\bProf\.(?=\s+[A-Z])", "Professor"),
    (r"\b([A-Z][A-Za-z]*|\d+(?:st|nd|rd|th)?) Ave\.?" + _END, r"\1 Avenue"),
    (r"\b([A-Z][A-Za-z]*|\d+(?:st|nd|rd|th)?) Rd\.?" + _END, r"\1 Road"),
    (r"\b([A-Z][A-Za-z]*|\d+(?:st|nd|rd|th)?) Blvd\.?" + _END, r"\1 Boulevard"),
    (r"\b([A-Z][A-Za-z]*|\d+(?:st|nd|rd|th)?) Ln\.?" + _END, r"\1 Lane"),
    (r"\b([A-Z][A-Za-z]*|\d+(?:st|nd|rd|th)?) Hwy\.?" + _END, r"\1 Highway"),
    (r"\bApt\.?(?=\s*#?\s*\w)", "Apartment"),
    (r"\bSte\.(?=\s*#?\s*\w)", "Suite"),
    (r"\b[Ee]xt\.?(?=\s*\d)", "extension"),
    (r"\bNo\.(?=\s*\d)", "number"),
    (r"\bnos?\.(?=\s*\d)", "number"),
    (r"\bJr\.", "Junior"),
    (r"\bSr\.", "Senior"),
    (r"\bInc\.", "Incorporated"),
    (r"\bLtd\.", "Limited"),
    (r"\bCorp\.", "Corporation"),
    (r"\bDept\.", "Department"),
    (r"\bapprox\.", "approximately"),
    (r"\betc\.", "et cetera"),
    (r"\be\.g\.", "for example"),
    (r"\bi\.e\.", "that is"),
    (r"\bvs\.?(?=\s)", "versus"),
    (r"\bqty\.?(?=\s)", "quantity"),
    (r"\bhrs\b\.?", "hours"),
    (r"\bmins\b\.?", "minutes"),
    (r"\bFAQs?\b", "F A Q"),
    (r"\bETA\b", "E T A"),
)

VOCAB = Vocab(
    lang="en", decimal_sep=".", months=MONTHS, month_abbr=MONTH_ABBR, weekday_abbr=WEEKDAYS,
    currencies={
        "USD": Currency("dollar", "dollars", "cent", "cents"), "EUR": Currency("euro", "euros", "cent", "cents"),
        "GBP": Currency("pound", "pounds", "penny", "pence"), "JPY": Currency("yen", "yen", "sen", "sen"),
        "CAD": Currency("Canadian dollar", "Canadian dollars", "cent", "cents"),
        "AUD": Currency("Australian dollar", "Australian dollars", "cent", "cents"),
        "CHF": Currency("Swiss franc", "Swiss francs", "centime", "centimes"),
        "INR": Currency("rupee", "rupees", "paisa", "paise"), "MXN": Currency("peso", "pesos", "centavo", "centavos"),
        "BRL": Currency("real", "reais", "centavo", "centavos"),
    },
    amount_and="and", percent="percent", units=UNITS,
    words={"at": "at", "dot": "dot", "dash": "dash", "underscore": "underscore", "plus": "plus", "slash": "slash",
           "colon": "colon", "number": "number", "to": "to", "and": "and", "degrees": "degrees", "hash": "number",
           "per": "per", "through": "through"},
    id_keywords=("order", "account", "reference", "ref", "confirmation", "ticket", "case", "invoice", "policy",
                 "tracking", "booking", "claim", "member", "customer", "serial", "PIN", "pin", "code", "ID", "id",
                 "number", "ending in", "ends in", "#"),
    say_date=say_date, say_time=say_time, abbreviations=ABBREVIATIONS, ordinal_suffix=r"(?:st|nd|rd|th)",
    default_date_order="dmy", locale_date_order={"en": "mdy", "en-us": "mdy", "en-ca": "mdy", "en-ph": "mdy"},
)
