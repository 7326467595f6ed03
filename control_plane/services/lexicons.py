"""Pronunciation lexicons per tenant: stored PLS documents, checked on the way in, parsed once and
reused for the requests that follow.

A request uses the tenant's lexicons marked `apply_by_default`, plus those it names (the `lexicons`
field, or `<lexicon uri="name"/>` in SSML), named ones first. Another tenant's lexicon is never
visible: every read is scoped to the caller's tenant (and row-level security on Postgres).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from control_plane.adapters.store import LexiconRow, Store
from control_plane.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from control_plane.services.pls import Lexicon, LexiconSet, PlsError, parse_pls
from control_plane.settings import Settings

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class LexiconInvalid(InvalidInput):
    """A PLS document that does not parse or check: 422 with the line and column of the problem."""

    def __init__(self, error: PlsError) -> None:
        super().__init__("invalid_lexicon", str(error))
        self.line = error.line
        self.column = error.column


@dataclass
class LexiconBook:
    """All of one tenant's lexicons, parsed, by name."""

    lexicons: dict[str, Lexicon]
    defaults: list[str]

    def select(self, names: list[str] | None) -> LexiconSet:
        chosen: list[Lexicon] = []
        for name in names or []:
            if name not in self.lexicons:
                raise InvalidInput("unknown_lexicon", f"lexicon '{name}' not found")
            if self.lexicons[name] not in chosen:
                chosen.append(self.lexicons[name])
        chosen += [self.lexicons[n] for n in self.defaults if self.lexicons[n] not in chosen]
        return LexiconSet(chosen)


def lexicon_view(row: LexiconRow, content: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": row.name, "language": row.language, "lexemes": row.lexemes,
                           "size_bytes": row.size_bytes, "apply_by_default": row.apply_by_default,
                           "version": row.version,
                           "created_at": row.created_at.isoformat() if row.created_at else None,
                           "updated_at": row.updated_at.isoformat() if row.updated_at else None}
    if content:
        out["content"] = row.content
    return out


class LexiconService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._books: dict[str, tuple[float, LexiconBook]] = {}

    # --- checking ---
    async def _parse(self, name: str, content: str) -> Lexicon:
        size = len(content.encode("utf-8"))
        if size > self.settings.lexicon_max_bytes:
            raise PayloadTooLarge("lexicon_too_large",
                           f"the lexicon is {size} bytes; the limit is {self.settings.lexicon_max_bytes}")
        try:
            # lxml parsing of up to the size limit takes milliseconds: off the event loop.
            return await asyncio.to_thread(parse_pls, content, name, self.settings.lexicon_max_lexemes)
        except PlsError as exc:
            raise LexiconInvalid(exc) from None

    # --- CRUD ---
    async def create(self, tenant_id: str, name: str, content: str, apply_by_default: bool) -> LexiconRow:
        if not NAME.match(name):
            raise InvalidInput("invalid_name", "a lexicon name is 1-64 letters, digits, '.', '_' or '-'")
        lexicon = await self._parse(name, content)
        if await self.store.lexicons.get(tenant_id, name) is not None:
            raise Conflict("lexicon_exists", f"a lexicon named '{name}' exists; PUT replaces it")
        if await self.store.lexicons.count(tenant_id) >= self.settings.lexicon_max_count:
            raise InvalidInput("lexicon_limit_reached",
                           f"a tenant may store at most {self.settings.lexicon_max_count} lexicons")
        row = LexiconRow(id=str(uuid.uuid4()), tenant_id=tenant_id, name=name, language=lexicon.language,
                         content=content, lexemes=len(lexicon.entries), size_bytes=len(content.encode("utf-8")),
                         apply_by_default=apply_by_default)
        row = await self.store.lexicons.create(tenant_id, row)
        self._books.pop(tenant_id, None)
        return row

    async def get(self, tenant_id: str, name: str) -> LexiconRow:
        row = await self.store.lexicons.get(tenant_id, name)
        if row is None:
            raise NotFound("lexicon_not_found", f"lexicon '{name}' not found")
        return row

    async def list(self, tenant_id: str) -> list[LexiconRow]:
        return await self.store.lexicons.list(tenant_id)

    async def update(self, tenant_id: str, name: str, content: str | None, apply_by_default: bool | None) -> LexiconRow:
        await self.get(tenant_id, name)
        fields: dict[str, object] = {}
        if content is not None:
            lexicon = await self._parse(name, content)
            fields.update(content=content, language=lexicon.language, lexemes=len(lexicon.entries),
                          size_bytes=len(content.encode("utf-8")))
        if apply_by_default is not None:
            fields["apply_by_default"] = apply_by_default
        row = await self.store.lexicons.update(tenant_id, name, **fields)
        self._books.pop(tenant_id, None)
        if row is None:
            raise NotFound("lexicon_not_found", f"lexicon '{name}' not found")
        return row

    async def delete(self, tenant_id: str, name: str) -> None:
        if not await self.store.lexicons.delete(tenant_id, name):
            raise NotFound("lexicon_not_found", f"lexicon '{name}' not found")
        self._books.pop(tenant_id, None)

    # --- for synthesis ---
    async def book(self, tenant_id: str) -> LexiconBook:
        """The tenant's lexicons, parsed; reused for LEXICON_CACHE_TTL_S."""
        now = time.monotonic()
        cached = self._books.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        rows = await self.store.lexicons.list(tenant_id)
        parsed = await asyncio.to_thread(_parse_rows, rows) if rows else {}
        book = LexiconBook(parsed, [r.name for r in rows if r.apply_by_default and r.name in parsed])
        if len(self._books) > 10_000:
            self._books.clear()
        self._books[tenant_id] = (now + self.settings.lexicon_cache_ttl_s, book)
        return book


def _parse_rows(rows: list[LexiconRow]) -> dict[str, Lexicon]:
    parsed: dict[str, Lexicon] = {}
    for row in rows:
        try:
            parsed[row.name] = parse_pls(row.content, row.name, max(row.lexemes, 1) + 1)
        except PlsError:
            continue  # stored documents were checked on the way in
    return parsed
