"""The one exception type export raises for a problem the operator can fix (bad input, existing output)."""


class ExportError(Exception):
    """An export could not be done; the message says what to fix. No output folder was written."""
