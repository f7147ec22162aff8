"""Screenshots of the documentation site as a browser renders it, to look at before a release:

    python tools/docs_screenshots.py --out /tmp/shots [--pages index,tutorial,reference/api]

builds the site (``mkdocs build --strict``) into a temporary folder, serves it on localhost and
has headless Chromium (``chromium``, or ``--browser PATH``) save one PNG per page. Nothing
checks the pictures: a person looks at them.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# No network here: without these Chromium keeps trying to reach Google's services.
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a folder for the PNG files")
    parser.add_argument("--pages", default="index,tutorial,reference/api",
                        help="pages, as their paths under docs/ without .md")
    parser.add_argument("--browser", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--size", default="1280,1600", help="the window, WIDTH,HEIGHT")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temp:
        site = Path(temp) / "site"
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                        "--site-dir", str(site)], cwd=ROOT, check=True)
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=site)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            for page in args.pages.split(","):
                path = "" if page == "index" else page.removesuffix("/index") + "/"
                url = f"http://127.0.0.1:{server.server_port}/{path}"
                png = args.out / (page.replace("/", "-") + ".png")
                subprocess.run([args.browser, *QUIET, f"--user-data-dir={temp}/profile",
                                f"--window-size={args.size}", f"--screenshot={png}", url],
                               check=True, capture_output=True, timeout=120)
                print(f"{url} -> {png}")
        finally:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
