"""`make package` builds what it must: the Lambda zip follows CORRAL_CONFIG_FILE, and the remote
builds get the constraints their requirements.txt names.

The real Makefile and mk/deploy.mk run in a scratch tree with a stand-in for the code and no
dependency installation (LAMBDA_PIP=true), so each build takes a second and needs no index.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ZIP = "dist/aws/corral-aws.zip"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The Makefiles and a minimal functions/aws and shared/corral."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copytree(ROOT / "mk", tmp_path / "mk")
    shutil.copy(ROOT / "constraints.txt", tmp_path / "constraints.txt")
    (tmp_path / "functions" / "aws").mkdir(parents=True)
    (tmp_path / "functions" / "aws" / "handler.py").write_text("HANDLER = True\n")
    (tmp_path / "functions" / "aws" / "requirements.txt").write_text("orjson==3.13.0\n")
    (tmp_path / "shared" / "corral").mkdir(parents=True)
    (tmp_path / "shared" / "corral" / "__init__.py").write_text("")
    return tmp_path


def make(tree: Path, *args: str, question: bool = False) -> subprocess.CompletedProcess[str]:
    """make ZIP (or make -q ZIP) in the scratch tree with the given variables."""
    command = ["make", "--no-print-directory", *(["-q"] if question else []), ZIP]
    command += ["LAMBDA_PIP=true", f"DEPLOY_PYTHON={sys.executable}", *args]
    return subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=120, check=False)


def build(tree: Path, *args: str) -> bytes | None:
    """Build the zip and return the corral.toml it ships, or None."""
    done = make(tree, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(tree / ZIP) as zipped:
        return zipped.read("corral.toml") if "corral.toml" in zipped.namelist() else None


def test_the_lambda_zip_ships_the_config_named_now(tree: Path) -> None:
    """A plain build, then one naming a config, an edit of it, and none again: each zip has what was asked."""
    config = tree / "corral.toml"
    assert build(tree) is None
    assert make(tree, question=True).returncode == 0, "an unchanged build is up to date"
    config.write_text('[[routes]]\nname = "first"\n')
    assert build(tree, "CORRAL_CONFIG_FILE=corral.toml") == config.read_bytes()
    assert make(tree, "CORRAL_CONFIG_FILE=corral.toml", question=True).returncode == 0
    config.write_text('[[routes]]\nname = "second"\n')
    assert build(tree, "CORRAL_CONFIG_FILE=corral.toml") == config.read_bytes()
    other = tree / "other.toml"
    other.write_text('[[routes]]\nname = "other"\n')
    assert build(tree, "CORRAL_CONFIG_FILE=other.toml") == other.read_bytes()
    assert build(tree) is None


def test_a_missing_config_file_is_an_error(tree: Path) -> None:
    """Naming a config that does not exist fails before anything is built."""
    done = make(tree, "CORRAL_CONFIG_FILE=nowhere.toml")
    assert done.returncode != 0
    assert "nowhere.toml" in done.stderr
    assert not (tree / ZIP).exists()


@pytest.mark.parametrize(
    ("target", "folder"), [("package-azure", "dist/azure/corral-azure"), ("package-gcp", "build/gcp")]
)
def test_remote_build_folders_carry_the_constraints_their_requirements_name(
    tree: Path, target: str, folder: str
) -> None:
    """requirements.txt says -c constraints.txt; the folder the platform builds holds that file, the repository's."""
    cloud = target.removeprefix("package-")
    (tree / "functions" / cloud).mkdir(parents=True)
    shutil.copy(ROOT / "functions" / cloud / "requirements.txt", tree / "functions" / cloud / "requirements.txt")
    for name in ("function_app.py", "host.json") if cloud == "azure" else ("main.py",):
        (tree / "functions" / cloud / name).write_text("{}\n" if name.endswith(".json") else "")
    done = subprocess.run(
        ["make", "--no-print-directory", target, f"DEPLOY_PYTHON={sys.executable}"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    built = tree / folder
    assert "-c constraints.txt" in (built / "requirements.txt").read_text().splitlines()
    assert (built / "constraints.txt").read_bytes() == (ROOT / "constraints.txt").read_bytes()
