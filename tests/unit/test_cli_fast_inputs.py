"""A folder walk lists what `sorted(Path(folder).rglob("*"))` lists, filtered as before, in the same order."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from corral import inputs


def reference(paths: Iterable[str], on_skip: Callable[[str], None] | None = None) -> Iterator[str]:
    """The walk as `pathlib` reads it: every entry of `rglob`, sorted as paths, then filtered."""
    for name in paths:
        path = Path(name)
        if name != "-" and path.is_dir():
            for found in sorted(path.rglob("*")):
                if not found.is_file() or found.name.startswith("."):
                    continue
                if inputs.readable(found):
                    yield str(found)
                elif on_skip is not None:
                    on_skip(str(found))
        else:
            yield name


NAMES = [
    "a.json",
    "a-c.json",
    "a/b.json",
    "a/B.JSON",
    "a.b/c.ndjson",
    "A/z.jsonl.gz",
    "a/deeper/still/x.json",
    ".hidden.json",
    ".hidden-folder/inside.json",
    "README.md",
    "a/notes.txt",
    "sp ace/é.json",
    "gz/only.gz",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in NAMES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link-to-file.json").symlink_to(tmp_path / "a.json")
    (tmp_path / "link-to-folder").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    return tmp_path


def test_a_walk_lists_as_rglob_does(tree: Path) -> None:
    for spelled in (str(tree), str(tree) + "/", str(tree) + "//a/..", str(tree / "a")):
        skipped: list[str] = []
        expected: list[str] = []
        assert list(inputs.expand([spelled, "-", "x.json"], skipped.append)) == [
            *reference([spelled], expected.append),
            "-",
            "x.json",
        ]
        assert skipped == expected


def test_a_relative_folder_and_the_current_one_are_spelled_as_pathlib_spells_them(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree)
    for spelled in (".", "./a", "a/", "./"):
        assert list(inputs.expand([spelled])) == list(reference([spelled]))
    monkeypatch.chdir(tree / "a")
    assert list(inputs.expand([".."])) == list(reference([".."]))


def test_an_unreadable_folder_gives_nothing(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk skips a folder it may not read and lists the rest."""
    unreadable = tree / "a"
    everything = list(reference([str(tree)]))
    expected = [found for found in everything if not Path(found).is_relative_to(unreadable)]
    assert expected and len(expected) < len(everything)
    if os.geteuid() == 0:
        # Root reads any folder whatever its mode: the refusal the kernel gives others is
        # simulated at the one call that meets it.
        real_scandir = os.scandir

        def refusing(folder: str) -> Iterator[os.DirEntry[str]]:
            if Path(folder) == unreadable:
                raise PermissionError(13, "Permission denied", folder)
            return real_scandir(folder)

        monkeypatch.setattr(inputs.os, "scandir", refusing)
    unreadable.chmod(0)
    try:
        listed = list(inputs.expand([str(tree)]))
    finally:
        unreadable.chmod(0o755)
    assert listed == expected
