"""The web console in real headless Chromium (Debian's `chromium`, driven by Playwright) against a
real gateway (uvicorn on a free port) and the session's real Triton.

One browser for the module; a fresh context (fresh sessionStorage) per test. Every page records
console errors and uncaught exceptions, CSP violations included, and a test fails if any appear.
Set CONSOLE_SCREENSHOTS=DIR to save a screenshot of each page there (`make console-screenshots`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.control_plane.gateway_helpers import ADMIN_TOKEN, Gateway, encode_reference, piper_speech, run_gateway

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
    "--use-fake-device-for-media-stream",  # a fake capture device (fed from a file, below)
]
GRAFANA_URL = "http://grafana.example:3000"


def chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.fail("chromium not found: install the Debian package (make system-deps)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def gateway(triton_piper, tmp_path_factory) -> Iterator[Gateway]:
    """Piper is loaded up front; the voice test asks for `triton_server`, which loads the XTTS models
    into the same Triton, so tests that only speak never wait for them."""
    with run_gateway(tmp_path_factory.mktemp("console"), triton_piper, grafana_url=GRAFANA_URL,
                     log_level="WARNING") as gw:
        yield gw


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # The fake microphone plays real speech (the bundled voice), looped.
    speech = tmp_path_factory.mktemp("mic") / "speech.wav"
    speech.write_bytes(encode_reference(*piper_speech(6.0), "wav"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(),
                                    args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={speech}"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Console:
    page: Any
    url: str
    errors: list[str] = field(default_factory=list)

    def open(self, hash_: str = "") -> None:
        self.page.goto(f"{self.url}/console/{hash_}")

    def sign_in(self, token: str, admin: bool = False) -> None:
        self.open()
        if admin:
            self.page.get_by_label("the admin token").check()
        self.page.get_by_label("Admin token" if admin else "API key", exact=True).fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_selector("#page-admin:not([hidden])" if admin else "#page-playground:not([hidden])")

    def go(self, name: str) -> None:
        self.page.get_by_role("link", name=name, exact=True).click()
        self.page.wait_for_selector(f"#page-{name.lower()}:not([hidden])")

    def shot(self, name: str, full_page: bool = True) -> None:
        folder = os.environ.get("CONSOLE_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)


def _counts(message: Any) -> bool:
    """Console errors count, except the browser's own line for a 4xx answer the page handled and showed
    (a refused key, a rejected upload); CSP violations and script errors always count."""
    return message.type == "error" and not re.match(r"Failed to load resource: .* status of 4\d\d", message.text)


@pytest.fixture
def console(browser, gateway) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(120_000)  # generous: the CI machine may be busy
    c = Console(page, gateway.url)
    page.on("console", lambda m: c.errors.append(f"console.{m.type}: {m.text}") if _counts(m) else None)
    page.on("pageerror", lambda e: c.errors.append(f"uncaught: {e}"))
    try:
        yield c
    finally:
        context.close()
    assert not c.errors, c.errors


@pytest.fixture
def admin_token() -> str:
    return ADMIN_TOKEN
