"""Identifier checks shared by the services: ids are UUIDs, and anything else is simply not found."""

from __future__ import annotations

import uuid


def is_uuid(value: str) -> bool:
    """Whether `value` parses as a UUID (so a malformed id is a 404, never a database error)."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
