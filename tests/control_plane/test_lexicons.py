"""Pronunciation lexicons: PLS checks with line and column, /v1/lexicons on both store backends,
per-tenant limits, isolation between tenants, and how lexicons and normalisation reach the plan
(seen through /v1/ssml/validate, which shows the spoken form synthesis would use)."""

from __future__ import annotations

import pytest
from conftest import bearer, settings_for, start_api

from control_plane.services.pls import LexiconSet, PlsError, parse_pls

NS = 'xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"'


def pls(*lexemes: str, lang: str = "en-US") -> str:
    body = "\n".join(f"  {x}" for x in lexemes)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<lexicon version="1.0" {NS} alphabet="ipa" xml:lang="{lang}">' \
           f"\n{body}\n</lexicon>\n"


ALIAS = "<lexeme><grapheme>Xarelto</grapheme><alias>zuh rel toe</alias></lexeme>"
IPA = "<lexeme><grapheme>Acme</grapheme><phoneme>ˈækmi</phoneme></lexeme>"


# --- the PLS parser -------------------------------------------------------------------------


def test_parse_alias_and_ipa_entries():
    lx = parse_pls(pls(ALIAS, IPA, "<lexeme><grapheme>BTW</grapheme><grapheme>btw</grapheme>"
                                   "<alias>by the way</alias></lexeme>"), "x", 100)
    assert lx.language == "en-US" and set(lx.entries) == {"Xarelto", "Acme", "BTW", "btw"}
    assert lx.entries["Acme"].spoken() == "[[ ˈækmi ]]"
    assert LexiconSet([lx]).apply("Xarelto from Acme, BTW.", "en") == "zuh rel toe from [[ ˈækmi ]], by the way."
    assert LexiconSet([lx]).apply("Xarelto", "fr") == "Xarelto"  # an en lexicon does not apply to French
    assert LexiconSet([lx]).apply("Xareltos and xarelto", "en") == "Xareltos and xarelto"  # whole, exact words


@pytest.mark.parametrize(("doc", "line", "column", "words"), [
    (pls(ALIAS, "<lexeme><grapheme>x</grapheme>"), 5, 11, "malformed XML"),
    (pls(ALIAS, "<lexeme><alias>nothing to replace</alias></lexeme>"), 4, 3, "at least one <grapheme>"),
    (pls(ALIAS, "<lexeme><grapheme>Foo</grapheme></lexeme>"), 4, 3, "an <alias> or a <phoneme>"),
    (pls(ALIAS, "  <lexeme><grapheme>Foo</grapheme><sound>f</sound></lexeme>"), 4, 37, "unexpected element <sound>"),
    (pls(ALIAS).replace('alphabet="ipa"', 'alphabet="x-sampa"'), 2, 1, 'alphabet="ipa"'),
    (pls(ALIAS).replace(' xml:lang="en-US"', ""), 2, 1, "xml:lang"),
    ('<?xml version="1.0"?>\n<!DOCTYPE lexicon [<!ENTITY a "b">]>\n<lexicon/>', 2, 1, "DOCTYPE"),
    ("<speak>not a lexicon</speak>", 1, 1, "root element must be <lexicon>"),
])
def test_bad_documents_name_line_and_column(doc, line, column, words):
    with pytest.raises(PlsError) as info:
        parse_pls(doc, "x", 100)
    assert (info.value.line, info.value.column) == (line, column), info.value
    assert words in info.value.message


def test_too_many_lexemes():
    with pytest.raises(PlsError, match="more than 2 lexemes"):
        parse_pls(pls(ALIAS, IPA, ALIAS.replace("Xarelto", "Y")), "x", 2)


def test_the_first_lexicon_naming_a_word_wins():
    a = parse_pls(pls("<lexeme><grapheme>Acme</grapheme><alias>first</alias></lexeme>"), "a", 10)
    b = parse_pls(pls("<lexeme><grapheme>Acme</grapheme><alias>second</alias></lexeme>"), "b", 10)
    assert LexiconSet([a, b]).apply("Acme", "en") == "first"
    assert LexiconSet([b, a]).apply("Acme", "en") == "second"


# --- the API, on SQLite and on Postgres + Redis --------------------------------------------------


async def _validate(api, key: str, ssml: str, **extra) -> dict:
    r = await api.client.post("/v1/ssml/validate", headers=bearer(key),
                              json={"ssml": f"<speak>{ssml}</speak>", "voice_id": "en-US-generic", **extra})
    assert r.status_code == 200, r.text
    return r.json()


async def test_crud_and_application(api):
    _, key = await api.tenant()
    h = bearer(key)
    r = await api.client.post("/v1/lexicons", headers=h, json={"name": "pharmacy", "content": pls(ALIAS, IPA)})
    assert r.status_code == 201, r.text
    assert r.json()["lexemes"] == 2 and r.json()["language"] == "en-US" and r.json()["apply_by_default"] is True
    assert (await api.client.post("/v1/lexicons", headers=h, json={"name": "pharmacy", "content": pls(ALIAS)})
            ).status_code == 409
    listed = (await api.client.get("/v1/lexicons", headers=h)).json()["lexicons"]
    assert [x["name"] for x in listed] == ["pharmacy"]
    one = (await api.client.get("/v1/lexicons/pharmacy", headers=h)).json()
    assert one["content"] == pls(ALIAS, IPA) and one["version"] == 1

    body = await _validate(api, key, "Take Xarelto from Acme for $5.")
    assert body["segments"][0]["text"] == "Take zuh rel toe from [[ ˈækmi ]] for five dollars."
    assert body["billed_characters"] == len(body["segments"][0]["text"])

    # say-as keeps priority over normalisation; normalize "off" leaves the text as written (lexicons still apply)
    body = await _validate(api, key, 'Code <say-as interpret-as="characters">AB12</say-as> costs $5.',
                           normalize="off")
    assert body["segments"][0]["text"] == "Code A B 1 2 costs $5."

    r = await api.client.put("/v1/lexicons/pharmacy", headers=h, json={"apply_by_default": False})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert (await _validate(api, key, "Xarelto."))["segments"][0]["text"] == "Xarelto."
    named = await _validate(api, key, "Xarelto.", lexicons=["pharmacy"])
    assert named["segments"][0]["text"] == "zuh rel toe."
    in_ssml = await _validate(api, key, '<lexicon uri="pharmacy"/>Xarelto.')
    assert in_ssml["segments"][0]["text"] == "zuh rel toe."

    r = await api.client.put("/v1/lexicons/pharmacy", headers=h, json={"content": pls("<lexeme>")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_lexicon"
    assert (r.json()["error"]["line"], r.json()["error"]["column"]) == (4, 11)

    assert (await api.client.delete("/v1/lexicons/pharmacy", headers=h)).status_code == 204
    assert (await api.client.get("/v1/lexicons/pharmacy", headers=h)).status_code == 404
    assert (await api.client.delete("/v1/lexicons/pharmacy", headers=h)).status_code == 404


async def test_bad_pls_is_422_with_line_and_column(api):
    _, key = await api.tenant()
    doc = pls(ALIAS, "<lexeme><grapheme>Foo</grapheme></lexeme>")
    r = await api.client.post("/v1/lexicons", headers=bearer(key), json={"name": "bad", "content": doc})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_lexicon" and (err["line"], err["column"]) == (4, 3)
    assert "line 4, column 3" in err["message"]
    r = await api.client.post("/v1/lexicons", headers=bearer(key), json={"name": "no spaces", "content": pls(ALIAS)})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_name"


async def test_another_tenants_lexicon_never_applies(api):
    _, key_a = await api.tenant()
    _, key_b = await api.tenant()
    r = await api.client.post("/v1/lexicons", headers=bearer(key_a), json={"name": "brand", "content": pls(ALIAS)})
    assert r.status_code == 201
    assert (await api.client.get("/v1/lexicons", headers=bearer(key_b))).json()["lexicons"] == []
    assert (await api.client.get("/v1/lexicons/brand", headers=bearer(key_b))).status_code == 404
    assert (await api.client.put("/v1/lexicons/brand", headers=bearer(key_b),
                                 json={"apply_by_default": False})).status_code == 404
    assert (await api.client.delete("/v1/lexicons/brand", headers=bearer(key_b))).status_code == 404
    # B's requests: A's default lexicon does not apply, and naming it is an error, in JSON and in SSML
    assert (await _validate(api, key_b, "Xarelto."))["segments"][0]["text"] == "Xarelto."
    r = await api.client.post("/v1/ssml/validate", headers=bearer(key_b),
                              json={"ssml": "<speak>Xarelto.</speak>", "lexicons": ["brand"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_lexicon"
    body = await _validate(api, key_b, '<lexicon uri="brand"/>Xarelto.')
    assert not body["valid"] and "lexicon 'brand' not found" in body["errors"][0]["message"]
    # ... while A's own requests use it
    assert (await _validate(api, key_a, "Xarelto."))["segments"][0]["text"] == "zuh rel toe."


async def test_size_and_count_limits(backend):
    settings = settings_for(backend, lexicon_max_count=2, lexicon_max_bytes=1000, lexicon_max_lexemes=3)
    app, lifespan, client = await start_api(settings)
    try:
        r = await client.post("/admin/v1/tenants", headers={"Authorization": "Bearer test-admin-token"},
                              json={"name": "limits-tenant"})
        h = bearer(r.json()["api_key"])
        big = pls(*[ALIAS.replace("Xarelto", f"W{i}") for i in range(30)])
        r = await client.post("/v1/lexicons", headers=h, json={"name": "big", "content": big})
        assert r.status_code == 413 and r.json()["error"]["code"] == "lexicon_too_large"
        many = pls(*[ALIAS.replace("Xarelto", f"W{i}") for i in range(4)])
        r = await client.post("/v1/lexicons", headers=h, json={"name": "many", "content": many})
        assert r.status_code == 422 and "more than 3 lexemes" in r.json()["error"]["message"]
        for name in ("one", "two"):
            assert (await client.post("/v1/lexicons", headers=h, json={"name": name, "content": pls(ALIAS)})
                    ).status_code == 201
        r = await client.post("/v1/lexicons", headers=h, json={"name": "three", "content": pls(ALIAS)})
        assert r.status_code == 422 and r.json()["error"]["code"] == "lexicon_limit_reached"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_normalize_switch_reaches_the_plan(api):
    _, key = await api.tenant()
    text = "Your order #A-10293 ships on Jan 5th."
    auto = await _validate(api, key, text)
    assert auto["segments"][0]["text"] == "Your order number A, one zero two nine three ships on January fifth."
    off = await _validate(api, key, text, normalize="off")
    assert off["segments"][0]["text"] == text
    r = await api.client.post("/v1/ssml/validate", headers=bearer(key),
                              json={"ssml": "<speak>5 $</speak>", "language": "ru", "normalize": "on"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "normalization_unavailable"
    r = await api.client.post("/v1/ssml/validate", headers=bearer(key),
                              json={"ssml": "<speak>x</speak>", "normalize": "sometimes"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


async def test_row_level_security_keeps_lexicons_apart(pg_database):
    """As the API's login role with no WHERE clause: one tenant's transaction sees only its own lexicons,
    cannot move a row to another tenant, and the admin role sees none."""
    import uuid

    import asyncpg

    from control_plane.adapters.store import LexiconRow, Store
    from control_plane.services.tenants import TenantService
    from control_plane.settings import Settings

    settings = Settings(database_url=pg_database.app_url)
    store = Store.from_settings(settings)
    ids = []
    try:
        for label in ("a", "b"):
            row, _ = await TenantService(store, settings).create(f"lex-{label}-{uuid.uuid4().hex[:6]}")
            await store.lexicons.create(row.id, LexiconRow(id=str(uuid.uuid4()), tenant_id=row.id, name=f"lx-{label}",
                                                           language="en-US", content=pls(ALIAS), lexemes=1,
                                                           size_bytes=10))
            ids.append(row.id)
    finally:
        await store.close()
    conn = await asyncpg.connect(pg_database.app_url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE tts_app")
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", ids[1])
            rows = await conn.fetch("SELECT name, tenant_id FROM lexicons")
            assert [(r["name"], str(r["tenant_id"])) for r in rows] == [("lx-b", ids[1])]
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE lexicons SET tenant_id = $1", uuid.UUID(ids[0]))
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE tts_admin")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT * FROM lexicons")
    finally:
        await conn.close()
