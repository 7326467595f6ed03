"""`make run`'s printed console link in headless Chromium: opening it signs in with no typing and
Speak plays the bundled voice; the link works once and leaves no code or key in the address bar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.services.console_signin import issue_code
from tests.console.test_console import new_tenant, speak_and_wait
from tests.control_plane.gateway_helpers import Gateway, run_gateway

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def code_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("signin") / "console-signin.json"


@pytest.fixture(scope="module")
def gateway(triton_piper, tmp_path_factory, code_file) -> Iterator[Gateway]:
    """This module's gateway has the dev stack's sign-in links enabled (the other console tests' has not)."""
    with run_gateway(tmp_path_factory.mktemp("console-signin"), triton_piper, log_level="WARNING",
                     console_signin_code_file=str(code_file)) as gw:
        yield gw


def test_the_printed_link_signs_in_and_speak_plays(console, gateway, code_file):
    _, key = new_tenant(gateway)
    code = issue_code(code_file, key)  # what `tts-gateway up` does before printing the link
    page = console.page
    page.goto(f"{gateway.url}/console/#signin={code}")
    page.wait_for_selector("#page-playground:not([hidden])")
    assert code not in page.url and key not in page.url and page.url.endswith("/console/#playground")
    assert key in page.evaluate("() => sessionStorage.getItem('tts-console-session')")
    page.wait_for_function("() => document.querySelector('#pg-voice').options.length > 0")
    assert page.locator("#pg-voice").input_value() == "en-US-generic"  # the bundled Piper voice
    assert page.locator("#who-name").inner_text().startswith("Tenant console-")

    duration = speak_and_wait(page)  # no typing: the default text, the bundled voice
    assert 0.5 < duration < 15

    # The link is spent: opened again (a fresh tab), it shows why and offers the key form.
    other = page.context.browser.new_context()
    try:
        again = other.new_page()
        again.goto(f"{gateway.url}/console/#signin={code}")
        again.wait_for_selector("#signin-error:has-text('cannot be used')")
        assert again.locator("#page-signin").is_visible() and code not in again.url
        assert again.evaluate("() => sessionStorage.length") == 0
    finally:
        other.close()
