"""Sphinx extension: the site's PNGs (the notebooks' matplotlib figures) at a third of their size.

After the build, each PNG in ``_images`` goes through ``pngquant`` (Debian's package; ``make book`` and
``make test`` install it), which reduces it to a palette of at most 256 colours with dithering. A figure
the palette cannot render at pngquant's quality 80 out of 100 (pose images whose limbs are coloured by
joint, say) keeps its original file, as does one that would not get smaller. On the 13-chapter book:
80 figures, 4.55 MB before, 1.97 MB after (77 quantised); the two it changed most (PSNR 46.7 and 47.8 dB),
looked at beside their originals, show no visible difference.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
QUALITY = "80-100"  # pngquant's --quality min-max: below min it writes nothing (exit 99) and the original stays
KEPT = (98, 99)     # pngquant's exit codes for "would be larger" and "quality below min"


def quantise(path: Path) -> bool:
    """Replace ``path`` by its pngquant palette version; False where pngquant kept the original."""
    out = path.with_name(path.stem + ".pngquant.png")
    run = subprocess.run(["pngquant", f"--quality={QUALITY}", "--strip", "--skip-if-larger", "--force",
                          "--output", str(out), str(path)], capture_output=True, text=True)
    if run.returncode == 0 and out.exists():
        out.replace(path)
        return True
    out.unlink(missing_ok=True)
    if run.returncode not in KEPT:
        raise RuntimeError(f"pngquant failed on {path} (exit {run.returncode}): {run.stderr.strip()}")
    return False


def _finish(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    images = sorted((Path(app.outdir) / "_images").glob("*.png"))
    if not images:
        return
    if shutil.which("pngquant") is None:
        logger.warning("pngquant is not installed, so the site's %d PNGs keep their full size (about 2.5 times "
                       "larger): `make pngquant` (or `apt-get install pngquant`) installs it", len(images))
        return
    before = sum(p.stat().st_size for p in images)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        done = sum(pool.map(quantise, images))
    after = sum(p.stat().st_size for p in images)
    logger.info("pngquant: %d of %d PNGs quantised, %.1f -> %.1f MB", done, len(images), before / 1e6, after / 1e6)


def setup(app):
    app.connect("build-finished", _finish)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
