#!/usr/bin/env python3
"""Screenshot an ``ahazero report`` HTML file with headless Chromium (to check that every plot is drawn).

Usage:
    python scripts/screenshot_report.py runs/default/report/report.html                # -> report.png beside it
    python scripts/screenshot_report.py REPORT.html --out docs/report-screenshot.png --max-bytes 1000000

Needs a Chromium (``apt-get install -y chromium``); says so, and exits with 3, when none is found.
The page is rendered in a tall window (``--height``), the empty space below the page is cropped,
and the PNG is shrunk (palette, then scale) until it is under ``--max-bytes`` (needs Pillow,
which matplotlib brings). The browser gets a throwaway profile and no network.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium executable: ``explicit``, ``$CHROMIUM``, or the first of BROWSERS on PATH."""
    for candidate in (explicit, os.environ.get("CHROMIUM"), *BROWSERS):
        if candidate:
            path = shutil.which(candidate)
            if path:
                return path
    return None


def screenshot(html: Path, png: Path, *, chromium: str, width: int = 1280, height: int = 4000,
               scale: float = 1.0, timeout: float = 120.0) -> None:
    """Render ``html`` with headless Chromium into ``png`` (the window size, not cropped)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ahazero-chromium-") as profile:
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
            f"--force-device-scale-factor={scale}", f"--screenshot={png.resolve()}",
            f"--window-size={width},{height}", html.resolve().as_uri(),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot (exit {result.returncode}):\n{result.stderr[-2000:]}")


def crop_and_shrink(png: Path, *, max_bytes: int | None, margin: int = 24) -> str:
    """Crop the blank bottom of the screenshot, then shrink it under ``max_bytes``; describe what was done."""
    try:
        from PIL import Image, ImageChops
    except ImportError:
        return "Pillow not installed: left as rendered"
    img = Image.open(png).convert("RGB")
    background = Image.new("RGB", img.size, img.getpixel((img.width - 1, img.height - 1)))
    box = ImageChops.difference(img, background).getbbox()
    if box:
        img = img.crop((0, 0, img.width, min(img.height, box[3] + margin)))
    notes = [f"{img.width}x{img.height}"]
    img.save(png, optimize=True)
    if max_bytes and png.stat().st_size > max_bytes:
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
        notes.append("256 colours")
        factor = 1.0
        while png.stat().st_size > max_bytes and factor > 0.3:
            factor *= 0.85
            size = (int(img.width * factor), int(img.height * factor))
            img.resize(size, Image.Resampling.LANCZOS).quantize(colors=256).save(png, optimize=True)
        if factor < 1.0:
            notes.append(f"scaled to {factor:.0%}")
    return ", ".join(notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report's HTML file")
    parser.add_argument("--out", type=Path, default=None, help="PNG to write (default: the HTML's name, .png)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=6000, help="window height; the blank bottom is cropped")
    parser.add_argument("--scale", type=float, default=1.0, help="device scale factor")
    parser.add_argument("--max-bytes", type=int, default=1_000_000, help="shrink the PNG below this (0 = never)")
    parser.add_argument("--chromium", default=None, help="the browser executable (default: search PATH)")
    args = parser.parse_args(argv)

    if not args.html.is_file():
        print(f"no such file: {args.html}", file=sys.stderr)
        return 2
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("chromium not found: install it (e.g. `apt-get install -y chromium`) or pass --chromium PATH "
              "(or set $CHROMIUM)", file=sys.stderr)
        return 3
    out = args.out or args.html.with_suffix(".png")
    try:
        screenshot(args.html, out, chromium=chromium, width=args.width, height=args.height, scale=args.scale)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"screenshot failed: {err}", file=sys.stderr)
        return 1
    notes = crop_and_shrink(out, max_bytes=args.max_bytes or None)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB; {notes})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
