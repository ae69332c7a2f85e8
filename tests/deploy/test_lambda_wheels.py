"""The Lambda artifact's compiled code fits the runtime it is deployed to, on both architectures.

x86_64 runs python3.11 on Amazon Linux 2 (glibc 2.26), arm64 runs python3.12 on Amazon Linux 2023
(glibc 2.34). Neither can be imported here for arm64, so the check reads what was built: every
shared object's ELF machine, every extension's ABI tag, and the glibc each wheel asks for.
"""

from __future__ import annotations

import re
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EM_X86_64, EM_AARCH64 = 62, 183
MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_|manylinux(2014|2010|1)_")
LEGACY_GLIBC = {"2014": (2, 17), "2010": (2, 12), "1": (2, 5)}


def elf_machine(header: bytes) -> int:
    """e_machine of a little-endian ELF file."""
    assert header[:4] == b"\x7fELF", "not an ELF file"
    machine: int = struct.unpack_from("<H", header, 18)[0]
    return machine


def glibc_wanted(wheel_tags: str) -> tuple[int, int]:
    """The oldest glibc any of a wheel's platform tags accepts (WHEEL's Tag lines)."""
    versions = []
    for match in MANYLINUX.finditer(wheel_tags):
        versions.append((int(match[1]), int(match[2])) if match[1] else LEGACY_GLIBC[match[3]])
    return min(versions) if versions else (0, 0)


def check_tree(files: dict[str, bytes], machine: int, abi: str, glibc: tuple[int, int]) -> None:
    """Every .so is for `machine`, every extension for `abi`, every wheel within `glibc`."""
    shared = {name: data for name, data in files.items() if name.endswith(".so") or ".so." in name}
    assert shared, "no compiled code found"
    for name, data in shared.items():
        assert elf_machine(data[:20]) == machine, name
        if ".cpython-" in name:
            assert f".cpython-{abi}-" in name, name
    wheels = {name: data.decode() for name, data in files.items() if name.endswith(".dist-info/WHEEL")}
    assert wheels
    for name, text in wheels.items():
        assert glibc_wanted(text) <= glibc, f"{name} needs a newer glibc than the runtime's {glibc}"


def test_x86_64_artifact_matches_python311_on_amazon_linux_2() -> None:
    """dist/aws/corral-aws.zip (the default build) holds x86_64, cp311, glibc <= 2.26 code."""
    archive = ROOT / "dist" / "aws" / "corral-aws.zip"
    if not archive.exists():
        pytest.fail(f"{archive} is missing: run `make package` before the tests (CI does)")
    with zipfile.ZipFile(archive) as zipped:
        files = {name: zipped.read(name) for name in zipped.namelist() if name.endswith((".so", "/WHEEL"))}
    check_tree(files, EM_X86_64, "311", (2, 26))


def test_arm64_build_matches_python312_on_amazon_linux_2023(tmp_path: Path) -> None:
    """`LAMBDA_ARCH=arm64` vendors aarch64, cp312, glibc <= 2.34 code."""
    target = tmp_path / "arm64"
    run = subprocess.run(
        ["make", "--no-print-directory", "-s", "lambda-deps", "LAMBDA_ARCH=arm64", f"LAMBDA_DEPS_DIR={target}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    files = {
        str(path.relative_to(target)): path.read_bytes()
        for path in target.rglob("*")
        if path.is_file() and (path.name.endswith(".so") or ".so." in path.name or path.name == "WHEEL")
    }
    check_tree(files, EM_AARCH64, "312", (2, 34))
