"""Spanish: day/month/year, decimal comma, "doce euros con cincuenta céntimos"."""

from __future__ import annotations

from control_plane.services.normalize.numbers import cardinal
from control_plane.services.normalize.vocab import Currency, Vocab

MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
          "noviembre", "diciembre")


def say_date(day: int, month: int, yr: int | None, locale: str) -> str:
    d = "primero" if day == 1 else cardinal(day, "es")
    out = f"{d} de {MONTHS[month - 1]}"
    return f"{out} de {cardinal(yr, 'es')}" if yr is not None else out


def say_time(hour: int, minute: int, suffix: str) -> str:
    h = "una" if hour == 1 else cardinal(hour, "es")
    if minute == 0:
        return f"{h} en punto"
    return f"{h} y {cardinal(minute, 'es')}"


VOCAB = Vocab(
    lang="es", decimal_sep=",", months=MONTHS,
    month_abbr={"ene": 1, "feb": 2, "mar": 3, "abr": 4, "may": 5, "jun": 6, "jul": 7, "ago": 8, "sep": 9, "sept": 9,
                "oct": 10, "nov": 11, "dic": 12},
    weekday_abbr={"lun": "lunes", "mar": "martes", "mié": "miércoles", "jue": "jueves", "vie": "viernes",
                  "sáb": "sábado", "dom": "domingo"},
    currencies={"EUR": Currency("euro", "euros", "céntimo", "céntimos"),
                "USD": Currency("dólar", "dólares", "centavo", "centavos"),
                "GBP": Currency("libra", "libras", "penique", "peniques"),
                "MXN": Currency("peso", "pesos", "centavo", "centavos")},
    amount_and="con", percent="por ciento",
    units={"km": ("kilómetro", "kilómetros"), "m": ("metro", "metros"), "cm": ("centímetro", "centímetros"),
           "kg": ("kilo", "kilos"), "g": ("gramo", "gramos"), "mg": ("miligramo", "miligramos"),
           "ml": ("mililitro", "mililitros"), "l": ("litro", "litros"), "GB": ("gigabyte", "gigabytes"),
           "MB": ("megabyte", "megabytes"), "h": ("hora", "horas"), "min": ("minuto", "minutos"),
           "°C": ("grado", "grados"), "km/h": ("kilómetro por hora", "kilómetros por hora")},
    words={"at": "arroba", "dot": "punto", "dash": "guion", "underscore": "guion bajo", "plus": "más",
           "slash": "barra", "colon": "dos puntos", "number": "número", "to": "a", "and": "y", "degrees": "grados",
           "hash": "número", "per": "por", "through": "a"},
    id_keywords=("pedido", "cuenta", "referencia", "número", "expediente", "factura", "póliza", "código", "nº", "#"),
    say_date=say_date, say_time=say_time, ordinal_suffix=r"(?:º|\.º|o)", feminine_ordinal="ª",
    abbreviations=(
        (r"\bSra\.", "señora"), (r"\bSr\.", "señor"), (r"\bDra\.", "doctora"), (r"\bDr\.", "doctor"),
        (r"\bUds\.", "ustedes"), (r"\bUd\.", "usted"), (r"\bAvda\.", "avenida"), (r"\bC/(?=\s*[A-Z])", "calle"),
        (r"\b[Nn]\.?º(?=\s*\d)", "número"), (r"\bnúm\.(?=\s*\d)", "número"), (r"\b[Tt]el\.(?=\s*[\d+])", "teléfono"),
        (r"\betc\.", "etcétera"), (r"\baprox\.", "aproximadamente"), (r"\bpág\.", "página"),
    ),
)
