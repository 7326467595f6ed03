"""Portuguese (pt-PT and pt-BR): day/month/year, decimal comma, "doze euros e cinquenta cêntimos"."""

from __future__ import annotations

from control_plane.services.normalize.numbers import cardinal
from control_plane.services.normalize.vocab import Currency, Vocab

MONTHS = ("janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
          "novembro", "dezembro")


def say_date(day: int, month: int, yr: int | None, locale: str) -> str:
    d = "primeiro" if day == 1 else cardinal(day, "pt")
    out = f"{d} de {MONTHS[month - 1]}"
    return f"{out} de {cardinal(yr, 'pt')}" if yr is not None else out


def say_time(hour: int, minute: int, suffix: str) -> str:
    h = {1: "uma", 2: "duas"}.get(hour) or cardinal(hour, "pt")  # hours are feminine
    return f"{h} horas" if minute == 0 else f"{h} e {cardinal(minute, 'pt')}"


VOCAB = Vocab(
    lang="pt", decimal_sep=",", months=MONTHS,
    month_abbr={"jan": 1, "fev": 2, "mar": 3, "abr": 4, "mai": 5, "jun": 6, "jul": 7, "ago": 8, "set": 9, "out": 10,
                "nov": 11, "dez": 12},
    weekday_abbr={"seg": "segunda-feira", "ter": "terça-feira", "qua": "quarta-feira", "qui": "quinta-feira",
                  "sex": "sexta-feira", "sáb": "sábado", "dom": "domingo"},
    currencies={"EUR": Currency("euro", "euros", "cêntimo", "cêntimos"),
                "BRL": Currency("real", "reais", "centavo", "centavos"),
                "USD": Currency("dólar", "dólares", "centavo", "centavos"),
                "GBP": Currency("libra", "libras", "pêni", "pence")},
    amount_and="e", percent="por cento",
    units={"km": ("quilômetro", "quilômetros"), "m": ("metro", "metros"), "cm": ("centímetro", "centímetros"),
           "kg": ("quilo", "quilos"), "g": ("grama", "gramas"), "mg": ("miligrama", "miligramas"),
           "ml": ("mililitro", "mililitros"), "l": ("litro", "litros"), "GB": ("gigabyte", "gigabytes"),
           "MB": ("megabyte", "megabytes"), "h": ("hora", "horas"), "min": ("minuto", "minutos"),
           "°C": ("grau", "graus"), "km/h": ("quilômetro por hora", "quilômetros por hora")},
    words={"at": "arroba", "dot": "ponto", "dash": "hífen", "underscore": "sublinhado", "plus": "mais",
           "slash": "barra", "colon": "dois pontos", "number": "número", "to": "a", "and": "e", "degrees": "graus",
           "hash": "número", "per": "por", "through": "a"},
    id_keywords=("pedido", "conta", "referência", "número", "processo", "fatura", "apólice", "código", "protocolo",
                 "nº", "#"),
    say_date=say_date, say_time=say_time, ordinal_suffix=r"(?:º|\.º|o)", feminine_ordinal="ª",
    abbreviations=(
        (r"\bSra\.", "senhora"), (r"\bSr\.", "senhor"), (r"\bDra\.", "doutora"), (r"\bDr\.", "doutor"),
        (r"\bAv\.", "avenida"), (r"\bR\.(?=\s+[A-Z])", "rua"), (r"\b[Nn]\.?º(?=\s*\d)", "número"),
        (r"\b[Tt]el\.(?=\s*[\d+])", "telefone"), (r"\betc\.", "etcétera"), (r"\baprox\.", "aproximadamente"),
    ),
)
