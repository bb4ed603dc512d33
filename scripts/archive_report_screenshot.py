"""docs/archive-report.png: the archive report's page of a realistic archive, in headless Chromium.

Three days of mentions (the airline test part's real tweets, cycled, 40 to 110 an hour with the day's rhythm,
followers drawn from a long tail), and on the third afternoon a bad buzz: one cancellation complaint retweeted
hundreds of times. Scored with `python -m tweet_sentiment score` and the shipped model, then the page written
beside the output is opened from disk and shot whole.

    python -m scripts.archive_report_screenshot [--out docs/archive-report.png]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.score_benchmark import APP_ROOT, TWEETS

START = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
BUZZ = "@AirParadis cancelled my flight to Nice AGAIN, no email, no rebooking, 3 hours on hold. Never again."


def archive(path: Path, seed: int = 11) -> None:
    chance = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["tweet_id", "text", "followers", "retweets", "likes", "created_at"])
        number = 0
        for hour in range(72):
            rhythm = 75 + 35 * math.sin((hour % 24 - 9) / 24 * 2 * math.pi)
            buzz = 420 if hour == 62 else 260 if hour == 63 else 60 if hour == 64 else 0
            for index in range(int(rhythm) + buzz):
                moment = START + dt.timedelta(hours=hour, seconds=chance.randrange(3600))
                if index < buzz:
                    text = BUZZ if hour == 62 and index == 0 else f"RT @fan_{chance.randrange(10**6)}: {BUZZ}"
                    followers = 250_000 if text == BUZZ else int(chance.paretovariate(1.1) * 150)
                else:
                    signature = "".join(chance.choices("ABCDEFGHJKLMNPRSTW", k=2))  # as agents sign: distinct tweets
                    text = f"{TWEETS[chance.randrange(len(TWEETS))]} ^{signature}"
                    followers = int(chance.paretovariate(1.6) * 120)
                writer.writerow([number, text, followers, chance.randrange(5), chance.randrange(20),
                                 moment.isoformat().replace("+00:00", "Z")])  # fmt: skip
                number += 1


def screenshot(page_path: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900}, device_scale_factor=1)
        page.goto(page_path.as_uri())
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=APP_ROOT / "docs" / "archive-report.png")
    parser.add_argument("--manifest", type=Path, default=APP_ROOT / "models" / "champion.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source, scored = Path(folder) / "mentions-2026-11-23.csv", Path(folder) / "mentions-2026-11-23-scored.csv"
        archive(source)
        command = [sys.executable, "-m", "tweet_sentiment", "score", str(source), str(scored), "--no-progress",
                   "--model", str(args.manifest)]  # fmt: skip
        subprocess.run(command, check=True, cwd=APP_ROOT, stdout=subprocess.DEVNULL)
        screenshot(scored.with_name(scored.name + ".report.html"), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
