"""French: day/month/year, decimal comma, "douze euros cinquante", "quatorze heures trente"."""

from __future__ import annotations

from control_plane.services.normalize.numbers import cardinal
from control_plane.services.normalize.vocab import Currency, Vocab

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")


def say_date(day: int, month: int, yr: int | None, locale: str) -> str:
    d = "premier" if day == 1 else cardinal(day, "fr")
    out = f"{d} {MONTHS[month - 1]}"
    return f"{out} {cardinal(yr, 'fr')}" if yr is not None else out


def say_time(hour: int, minute: int, suffix: str) -> str:
    h = "une heure" if hour == 1 else f"{cardinal(hour, 'fr')} heures"
    if hour == 0:
        h = "minuit"
    return h if minute == 0 else f"{h} {cardinal(minute, 'fr')}"


VOCAB = Vocab(
    lang="fr", decimal_sep=",", months=MONTHS,
    month_abbr={"janv": 1, "févr": 2, "fév": 2, "avr": 4, "juil": 7, "sept": 9, "oct": 10, "nov": 11, "déc": 12},
    weekday_abbr={"lun": "lundi", "mar": "mardi", "mer": "mercredi", "jeu": "jeudi", "ven": "vendredi",
                  "sam": "samedi", "dim": "dimanche"},
    currencies={"EUR": Currency("euro", "euros", "centime", "centimes"),
                "USD": Currency("dollar", "dollars", "cent", "cents"),
                "GBP": Currency("livre", "livres", "penny", "pence"),
                "CHF": Currency("franc suisse", "francs suisses", "centime", "centimes")},
    amount_and="et", percent="pour cent",
    units={"km": ("kilomètre", "kilomètres"), "m": ("mètre", "mètres"), "cm": ("centimètre", "centimètres"),
           "kg": ("kilo", "kilos"), "g": ("gramme", "grammes"), "mg": ("milligramme", "milligrammes"),
           "ml": ("millilitre", "millilitres"), "l": ("litre", "litres"), "Go": ("gigaoctet", "gigaoctets"),
           "Mo": ("mégaoctet", "mégaoctets"), "GB": ("gigaoctet", "gigaoctets"), "min": ("minute", "minutes"),
           "°C": ("degré", "degrés"), "km/h": ("kilomètre heure", "kilomètres heure")},
    words={"at": "arobase", "dot": "point", "dash": "tiret", "underscore": "tiret bas", "plus": "plus",
           "slash": "barre oblique", "colon": "deux points", "number": "numéro", "to": "à", "and": "et",
           "degrees": "degrés", "hash": "numéro", "per": "par", "through": "à"},
    id_keywords=("commande", "compte", "référence", "numéro", "dossier", "facture", "contrat", "code", "n°", "#"),
    say_date=say_date, say_time=say_time, ordinal_suffix=r"(?:er|re|e|ème|è)",
    abbreviations=(
        (r"\bMme\b\.?", "Madame"), (r"\bMlle\b\.?", "Mademoiselle"), (r"\bM\.(?=\s+[A-Z])", "Monsieur"),
        (r"\bDr\b\.?(?=\s+[A-Z])", "Docteur"), (r"\b[Aa]v\.(?=\s)", "avenue"), (r"\bbd\b\.?(?=\s)", "boulevard"),
        (r"\b[Nn]°(?=\s*\d)", "numéro"), (r"\b[Tt]él\.(?=\s*[\d+])", "téléphone"), (r"\betc\.", "et cetera"),
        (r"\benv\.(?=\s)", "environ"), (r"\bp\. ?ex\.", "par exemple"),
    ),
)
