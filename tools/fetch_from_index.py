"""Download one named file of a project from the package index, check its sha256, cache it.

Why, for k2: the k2 1.23.4 release tags its files ``py3.9``, ``py3.10``, ``py3.11``. pip
reads ``py3.9`` as "py3 or 9", rates all three as equally good, and ``pip install k2==1.23.4``
picks the py3.9 file, whose extension cannot load on 3.11 (docs/stack.md, "k2: the wrong file").
So we pick the file by name from the index's simple page and install it by path.
Why, for sdists (kaldifeat, pybind11): ``pip download --no-binary`` builds each sdist's
metadata in an isolated environment first (slow, and needs more downloads); we only want
the archive.

The index is the one pip is configured with (``PIP_INDEX_URL`` / ``pip config``), else
pip's default; no address is written into the project.

Usage: python tools/fetch_from_index.py <cache-dir> <project> <filename>
Prints the path of the cached, verified file.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path


def index_url() -> str:
    """The simple-index URL pip would use."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True, text=True,
    )
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip()
    from pip._internal.models.index import PyPI  # pip's own default, not hard-coded here

    return PyPI.simple_url


def find_file(page: str, base: str, filename: str) -> tuple[str, str]:
    """Return (absolute url, sha256) of ``filename`` in a PEP 503 simple page."""
    for href in re.findall(r'href="([^"]+)"', page):
        url = urllib.parse.urljoin(base, href.replace("&amp;", "&"))
        path, _, fragment = url.partition("#")
        if urllib.parse.unquote(path.rsplit("/", 1)[-1]) == filename:
            match = re.match(r"sha256=([0-9a-f]{64})", fragment)
            if not match:
                raise SystemExit(f"fetch_from_index: the index lists {filename} without a sha256")
            return path, match.group(1)
    raise SystemExit(f"fetch_from_index: {filename} is not on the index page {base}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache_dir", type=Path)
    parser.add_argument("project", help="e.g. k2")
    parser.add_argument("filename", help="e.g. k2-1.23.4-py3.11-none-any.whl")
    args = parser.parse_args()

    filename = args.filename
    dest = args.cache_dir / filename
    sha_file = dest.with_name(dest.name + ".sha256")
    if dest.is_file() and sha_file.is_file() and sha256_of(dest) == sha_file.read_text().strip():
        print(dest)
        return

    base = index_url().rstrip("/") + f"/{args.project}/"
    try:
        with urllib.request.urlopen(base, timeout=120) as response:
            page = response.read().decode("utf-8", errors="replace")
    except OSError as err:
        raise SystemExit(f"fetch_from_index: cannot read the package index page {base}: {err}")
    url, expected = find_file(page, base, filename)

    args.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=args.cache_dir, suffix=".part", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        print(f"fetch_from_index: downloading {filename}", file=sys.stderr)
        urllib.request.urlretrieve(url, tmp_path)
        actual = sha256_of(tmp_path)
        if actual != expected:
            raise SystemExit(
                f"fetch_from_index: sha256 mismatch for {filename}: index says {expected}, got {actual}"
            )
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, dest)
        sha_file.write_text(expected + "\n")
    finally:
        tmp_path.unlink(missing_ok=True)
    print(dest)


if __name__ == "__main__":
    main()
