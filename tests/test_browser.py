"""The page in a real browser: Debian's chromium driven by Playwright, every tab clicked with the mouse.

One page, a library that already holds a cast member, the tabs walked in page order. After every event the
walk waits for its visible result, then checks that no progress overlay is left on any component: a stuck
overlay keeps a timer running and swallows clicks (issue 7), and the mouse clicks on pickers here fail
under one as they would for a person.

Adding a tab (Cast & Direct, Scene, Train, ...): write `walk_<tab>(page, ctx)` that clicks through the tab's main
path with the mouse and waits for what a user would wait for (call `settled(page)` after each event), then append
`("<tab label>", walk_<tab>)` to TABS in page order. `ctx` carries the test's inputs (audio files, names) and what
earlier tabs made; put what later tabs need into it. The walk saves `<label>.png` per tab in SCREENSHOTS_DIR
(default: the test's tmp dir; `SCREENSHOTS_DIR=docs/screenshots` refreshes the README's pictures).
"""
from __future__ import annotations

import os
import pathlib

import pytest
from playwright.sync_api import expect, sync_playwright

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"  # Debian's package (setup.sh); Playwright's own browser downloads are impossible here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EVENT_TIMEOUT_MS = 120_000   # a tiny-model event on two busy cores
SETTLE_TIMEOUT_MS = 5_000    # a finished event's overlay is gone within a frame; this is generous
# StatusTracker's overlay on a component: hidden when idle (class "hide"), else shown with a spinner and timer.
OVERLAY = '[data-testid="status-tracker"]:not(.hide)'


def settled(page) -> None:
    """Fail if any progress overlay is still shown once the events have finished."""
    overlays = page.locator(OVERLAY)
    try:
        overlays.first.wait_for(state="detached", timeout=SETTLE_TIMEOUT_MS)
    except Exception:
        left = page.evaluate("""sel => Array.from(document.querySelectorAll(sel)).map(
            e => (e.closest('[id]') || {}).id + ': ' + e.innerText.trim().slice(0, 40))""", OVERLAY)
        if left:
            raise AssertionError(f"progress overlay still shown after the events finished: {left}") from None


def pick(page, picker_id: str, option: str) -> None:
    """Open a dropdown with the mouse and click one of its options."""
    page.locator(f"#{picker_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(page.locator(f"#{picker_id} input")).to_have_value(option)


def type_into(page, elem_id: str, text: str) -> None:
    """Click a textbox with the mouse and type, as a person would."""
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    box.click()
    box.fill(text)


def walk_design(page, ctx: dict) -> None:
    type_into(page, "design_description", "a gravelly old sea captain, low and slow")
    type_into(page, "design_text", "Hoist the sails, lads.")
    page.locator("#design_go").click()
    expect(page.locator("#design_sample_1 audio").first).to_be_attached(timeout=EVENT_TIMEOUT_MS)
    settled(page)
    type_into(page, "keep_name", "Bosun Reed")
    page.locator("#keep_2").click()
    expect(page.locator("#design_status")).to_contain_text("Kept Bosun Reed", timeout=EVENT_TIMEOUT_MS)
    settled(page)


def walk_cast(page, ctx: dict) -> None:
    table = page.locator("#cast_table")
    expect(table).to_contain_text("Bosun Reed")
    expect(table).to_contain_text(ctx["member"])
    pick(page, "cast_picker", ctx["member"])
    expect(page.locator("#cast_preview audio").first).to_be_attached()
    settled(page)


def walk_convert(page, ctx: dict) -> None:
    page.locator("#convert_source input[type=file]").set_input_files(str(ctx["source"]))
    expect(page.locator("#convert_source audio").first).to_be_attached()
    pick(page, "convert_cast", "Bosun Reed")  # kept in Voice Design on this same page
    page.locator("#convert_go").click()
    expect(page.locator("#convert_status")).to_contain_text("diffusion steps", timeout=EVENT_TIMEOUT_MS)
    expect(page.locator("#convert_result audio").first).to_be_attached()
    settled(page)

    page.get_by_role("tab", name="RVC (a voice model)").click()
    page.get_by_text("RVC voices: add or remove").click()
    page.locator("#rvc_files input[type=file]").set_input_files([str(p) for p in ctx["rvc_voice"]])
    type_into(page, "rvc_name", "Marlowe")
    page.locator("#rvc_add").click()
    expect(page.locator("#convert_status")).to_contain_text("Added RVC voice Marlowe", timeout=EVENT_TIMEOUT_MS)
    expect(page.locator("#rvc_table")).to_contain_text("Marlowe")
    settled(page)
    pick(page, "rvc_voice", "Marlowe")
    pick(page, "rvc_format", "mp3")
    page.locator("#convert_rvc_go").click()
    mp3 = page.locator('#convert_result [src*=".mp3"], #convert_result [href*=".mp3"]').first
    expect(mp3).to_be_attached(timeout=EVENT_TIMEOUT_MS)  # the take, as MP3 (RVC's 40 kHz is not an MP3 rate)
    settled(page)
    takes = list(ctx["takes"].rglob("*.*"))
    assert any(t.suffix == ".mp3" for t in takes) and all(t.stat().st_size > 0 for t in takes), takes


TABS = [("Voice Design", walk_design), ("Cast", walk_cast), ("Convert", walk_convert)]


@pytest.fixture(scope="module")
def browser():
    if not pathlib.Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (setup.sh does)")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page_url(new_home, launch_studio, espeak, tmp_path_factory):
    """The studio served with a non-empty library (one uploaded cast member), and the walk's inputs."""
    import rvc.tiny

    url, studio, close = launch_studio(new_home())
    ref = espeak("I have kept this lighthouse for thirty years and never once missed a night.", voice="en-us+f2")
    member = "Lighthouse Keeper"
    if member not in [m["name"] for m in studio.cast_list()]:
        studio.cast_upload(ref, member, "calm, weathered", "english")
    folder = tmp_path_factory.mktemp("rvc_voice")
    voice = {"voice": folder / "Hale.pth", "index": folder / "added_IVF20_Flat_nprobe_1_Hale_v2.index"}
    rvc.tiny.build_tiny(voice, rvc.tiny.tiny_dims())
    source = espeak("Batten down the hatches, the storm is nearly here.", voice="en-us+m1")
    yield url, {"member": member, "source": source, "takes": studio.takes_dir, "rvc_voice": [voice["voice"], voice["index"]]}
    close()


def test_every_tab_works_with_the_mouse_and_leaves_no_progress_overlay(browser, page_url, tmp_path):
    url, ctx = page_url
    shots = pathlib.Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url)
        page.get_by_role("tab", name=TABS[0][0]).wait_for()
        settled(page)  # the page-load events (cast table, pickers) have finished and cleared their progress
        for label, walk in TABS:
            page.get_by_role("tab", name=label, exact=True).click()
            settled(page)
            walk(page, ctx)
            page.screenshot(path=str(shots / f"{label.lower().replace(' & ', '_').replace(' ', '_')}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, errors

