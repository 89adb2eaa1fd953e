"""Check the demo in a real browser: serve it, open it in headless Chromium, type a prompt, press Draw,
wait for the sketches, save a screenshot (docs/demo.png by default).

    python scripts/demo_screenshot.py [--pipeline models/pipeline] [--prompt "..."] [--out docs/demo.png]

Needs what the README's commands do not install, so it installs them itself when missing: Debian's
`chromium` package (apt-get, as root) and Playwright's Python package, which drives that Chromium
(no browser download: Playwright is pointed at /usr/bin/chromium). Exit status 0 only when the
images appeared on the page.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from minisd import demo, paths

PLAYWRIGHT = "playwright==1.65.3"


def chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    print("installing Debian's chromium (apt-get)...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
    return shutil.which("chromium") or sys.exit("error: apt-get installed chromium but it is not on PATH")


def playwright():
    try:
        from playwright import sync_api
    except ImportError:
        print(f"installing {PLAYWRIGHT} (pip)...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", PLAYWRIGHT], check=True)
        from playwright import sync_api
    return sync_api


def screenshot(url: str, browser_path: str, prompt: str, out: Path, timeout_s: float) -> str:
    """Returns the info line the page showed under the images."""
    sync_api = playwright()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url)
        page.locator("#prompt textarea").fill(prompt)
        page.locator("#draw").click()
        page.wait_for_selector("#gallery img", timeout=timeout_s * 1000)
        page.wait_for_function("document.querySelector('#info').innerText.includes('image(s)')", timeout=timeout_s * 1000)
        info = page.locator("#info").inner_text()
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", type=Path, default=paths.PIPELINE)
    parser.add_argument("--prompt", default="a large moon in the center")
    parser.add_argument("--out", type=Path, default=Path("docs/demo.png"))
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the images")
    args = parser.parse_args()
    browser_path = chromium()
    app = demo.load_demo(args.pipeline)
    start = time.perf_counter()
    demo.launch(app, "127.0.0.1", args.port, block=False)
    try:
        info = screenshot(app.local_url, browser_path, args.prompt, args.out, args.timeout)
    finally:
        app.close()
    print(f"{args.out}: the page showed {info.strip()!r} ({time.perf_counter() - start:.1f} s from launch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
