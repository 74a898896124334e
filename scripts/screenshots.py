#!/usr/bin/env python3
"""Writes a current picture of every step of the full-screen wizard into screenshots/.

The app runs headless at 80x24 with the demonstration core (tests/support/demo.py: fixed
answers, a made-up state, an apply that only reports events), is driven with the keys a
user would press, and each step is saved as SVG, then converted to PNG with rsvg-convert
(Debian's librsvg2-bin, installed when missing and run as root). Without rsvg-convert the
SVG files are kept and the README falls back to them.

    python3 scripts/screenshots.py            # all pictures
    python3 scripts/screenshots.py --svg-only # keep SVG, no PNG
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402

from omerowizard.ui.tui.app import WizardApp, make_app  # noqa: E402
from tests.support.demo import DEGRADED, PACKAGES, Demo, FakeMachine, reconfigure_answers  # noqa: E402

OUT = ROOT / "screenshots"
SIZE = (80, 24)


async def settle(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def keys(pilot: Pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


Shot = tuple[str, Callable[[Pilot], Awaitable[None]]]


async def first_time(pilot: Pilot) -> list[tuple[str, str]]:
    """Welcome, installer, every question step, review and run of a first-time deployment."""
    shots = []
    app = pilot.app
    await settle(pilot)
    shots.append(("01-welcome", app.export_screenshot(title="omerowizard: welcome")))
    await pilot.click("#install")
    await settle(pilot)
    await keys(pilot, "enter")
    shots.append(("02-install", app.export_screenshot(title="omerowizard: installing OMERO.web")))
    await keys(pilot, "escape", "enter")
    shots.append(("03-platform", app.export_screenshot(title="omerowizard: platform")))
    await keys(pilot, "enter")
    shots.append(("04-web-server", app.export_screenshot(title="omerowizard: web server")))
    await keys(pilot, "enter", "right")
    await keys(pilot, "tab")
    shots.append(("05-sessions", app.export_screenshot(title="omerowizard: sessions")))
    await keys(pilot, "enter", "right", "tab", *"https://hostname.example.com, hostname.example.org")
    await keys(pilot, "enter")
    shots.append(("06-cors-invalid", app.export_screenshot(title="omerowizard: CORS, a value refused inline")))
    await keys(pilot, "ctrl+u", *"https://hostname.example.com", "enter")
    await keys(pilot, "enter", "enter", "enter")  # OMERO.server, Public access and Web apps, as they are
    await keys(pilot, "tab", "tab", "tab")
    shots.append(("08-advanced", app.export_screenshot(title="omerowizard: advanced settings")))
    await keys(pilot, "enter")
    shots.append(("09-review", app.export_screenshot(title="omerowizard: review")))
    await keys(pilot, "enter", "y")  # Apply asks first: y applies
    shots.append(("10-run", app.export_screenshot(title="omerowizard: run")))
    return shots


async def web_apps(pilot: Pilot) -> list[tuple[str, str]]:
    """The Web apps step with OMERO.figure and OMERO.iviewer ticked (Space, Down, Space). A run of its own:
    the demonstration's run replays recorded runs, and none of them installed apps."""
    app = pilot.app
    await settle(pilot)
    while app.step_id != "apps":
        await keys(pilot, "enter")
    await keys(pilot, "space", "down", "space")
    return [("07-web-apps", app.export_screenshot(title="omerowizard: web apps"))]


async def reconfigure(pilot: Pilot) -> list[tuple[str, str]]:
    app = pilot.app
    await settle(pilot)
    shots = [("11-welcome-reconfigure", app.export_screenshot(title="omerowizard: reconfigure"))]
    while app.step_id != "review":
        await keys(pilot, "enter")
    shots.append(("12-review-nothing-to-change", app.export_screenshot(title="omerowizard: nothing to change")))
    return shots


async def health(pilot: Pilot) -> list[tuple[str, str]]:
    """The welcome of a deployment that `omerowizard status` finds degraded: the verdict and its problems."""
    await settle(pilot)
    return [("13-welcome-health", pilot.app.export_screenshot(title="omerowizard: a degraded deployment"))]


async def capture(app: WizardApp, script) -> list[tuple[str, str]]:
    async with app.run_test(size=SIZE) as pilot:
        return await script(pilot)


def rsvg() -> str | None:
    found = shutil.which("rsvg-convert")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "librsvg2-bin"], env=env, capture_output=True)
    return shutil.which("rsvg-convert")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg-only", action="store_true", help="keep the SVG files, make no PNG")
    args = parser.parse_args()
    os.environ.setdefault("OMEROWIZARD_HOME", str(ROOT / ".screenshots-home"))
    OUT.mkdir(exist_ok=True)
    shots = asyncio.run(capture(make_app(core=Demo().core(), blink=False, save_default="/root/answers.yml"),
                                first_time))
    shots += asyncio.run(capture(make_app(core=Demo().core(), blink=False), web_apps))
    # a host with another deployment, and OMERO.figure installed in the environment but not enabled
    machine = FakeMachine(packages={**PACKAGES, "omero-figure": "8.0.1"})
    demo = Demo(installed=True, deployed=True, nothing_to_change=True, flat=reconfigure_answers(), machine=machine,
                others=("/srv/lab2/OMERO.web",))
    shots += asyncio.run(capture(make_app(core=demo.core(), blink=False), reconfigure))
    degraded = Demo(installed=True, deployed=True, flat=reconfigure_answers(), health=DEGRADED)
    shots += asyncio.run(capture(make_app(core=degraded.core(), blink=False), health))
    shots.sort()
    converter = None if args.svg_only else rsvg()
    for old in OUT.glob("*.*"):
        old.unlink()
    for name, svg in shots:
        path = OUT / f"{name}.svg"
        path.write_text(svg)
        if converter:
            subprocess.run([converter, "--zoom", "1.0", "-b", "#1e1e1e", "-o", str(path.with_suffix(".png")),
                            str(path)], check=True)
            path.unlink()
        print(path.with_suffix(".png") if converter else path)
    if not converter and not args.svg_only:
        print("rsvg-convert is missing (apt-get install librsvg2-bin): kept SVG files", file=sys.stderr)
    shutil.rmtree(ROOT / ".screenshots-home", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
