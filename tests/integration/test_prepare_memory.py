"""Preparation stays within the function's memory: each source is prepared in a fresh process with
Lambda's memory setting, which reports its peak RSS as it ends.

The peak is the kernel's VmHWM of the child's own address space. Its rusage (ru_maxrss, by wait4 or
RUSAGE_CHILDREN) would not do: Linux starts it at the spawning process's peak, here a pytest worker's."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from reframe_pipeline.domain.preparation import decode_pixels_for
from reframe_pipeline.settings import Settings, SettingsError

MEMORY_MB = 1024
CHILD = r"""
import json, re, sys
from pathlib import Path
from reframe_pipeline.domain.preparation import UnsupportedImageError, prepare
from reframe_pipeline.settings import Settings

source, report = sys.argv[1:]
try:
    outcome = {"prepared": len(prepare(Path(source).read_bytes(), Settings.from_env().source_limits))}
except UnsupportedImageError as exc:
    outcome = {"refused": exc.message}
peak_kb = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)
Path(report).write_text(json.dumps({**outcome, "peak_mb": int(peak_kb) / 1024}))
"""


def flat_png(path: Path, width: int, height: int, rgba: tuple[int, int, int, int]) -> None:
    """A flat-colour RGBA PNG, compressed row by row: this process never holds its pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgba) * width  # filter type 0, then the pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits, colour type 6: RGBA
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def prepare_in_child(source: Path, tmp_path: Path) -> tuple[dict[str, object], float]:
    """What preparing ``source`` gave in a fresh process with MEMORY_MB of Lambda memory, and that
    process's peak RSS in MB."""
    report = tmp_path / "report.json"
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB)}
    env.pop("MAX_DECODE_PIXELS", None)
    subprocess.run([sys.executable, "-c", CHILD, str(source), str(report)], env=env, check=True, timeout=120)
    outcome = json.loads(report.read_text())
    return outcome, outcome.pop("peak_mb")


def test_a_source_just_under_the_old_limit_is_refused_before_decoding(tmp_path: Path):
    source = tmp_path / "huge.png"
    flat_png(source, 10950, 10950, (200, 90, 40, 255))  # 120 MP of RGBA: 480 MB per full-size copy
    assert source.stat().st_size < 1024 * 1024

    outcome, peak_mb = prepare_in_child(source, tmp_path)

    assert "refused" in outcome and "over the limit of 84 (MAX_DECODE_PIXELS" in str(outcome["refused"])
    assert peak_mb < 200


def test_a_large_allowed_source_prepares_within_the_memory(tmp_path: Path):
    source = tmp_path / "large.png"
    flat_png(source, 9000, 9000, (30, 140, 220, 128))  # 81 MP of RGBA, just under the limit at 1024 MB

    outcome, peak_mb = prepare_in_child(source, tmp_path)

    assert "prepared" in outcome
    assert peak_mb < MEMORY_MB * 0.75  # the headroom decode_pixels_for keeps is not used up


def test_the_decode_limit_follows_the_memory():
    assert decode_pixels_for(1024) == 640 * 1024 * 1024 // 8
    assert decode_pixels_for(256) < 16_777_216 < decode_pixels_for(1024) < decode_pixels_for(10240)
    assert Settings.from_env({}).source_limits.max_decode_pixels == decode_pixels_for(1024)  # the template's default
    big = Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"})
    assert big.source_limits.max_decode_pixels == decode_pixels_for(3008)


def test_an_explicit_decode_limit_wins_but_not_past_the_memory():
    assert Settings.from_env({"MAX_DECODE_PIXELS": "50000000"}).source_limits.max_decode_pixels == 50_000_000
    with pytest.raises(SettingsError, match=r"MAX_DECODE_PIXELS \(120,000,000\) is more than 1024 MB of memory"):
        Settings.from_env({"MAX_DECODE_PIXELS": "120000000"})
    allowed = Settings.from_env({"MAX_DECODE_PIXELS": "120000000", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048"})
    assert allowed.source_limits.max_decode_pixels == 120_000_000
