"""The README's tree of the repository ("The code") names what is there, and every room and step."""

import pathlib
import re

from tests.conftest import REPO_ROOT, TIERS

README = REPO_ROOT / "README.md"
MOST_LINES = 300


def tree_entries(text: str) -> list[str]:
    """The paths of the ```text tree under "## The code", each joined to its parents (2 spaces a level)."""
    section = re.search(r"^## The code\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert section, 'README.md has no "## The code" section'
    block = re.search(r"^```text\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL)
    assert block, 'README.md\'s "## The code" has no ```text tree'
    entries, parents = [], []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0 and indent // 2 <= len(parents), f"the tree's indentation is off at {line!r}"
        del parents[indent // 2:]
        name = line.split()[0]
        entries.append("".join(parents) + name)
        if name.endswith("/"):
            parents.append(name)
    return entries


def _missing(entries: list[str]) -> list[str]:
    return [entry for entry in entries if not ((REPO_ROOT / entry).is_dir() if entry.endswith("/")
                                               else (REPO_ROOT / entry).is_file())]


def _packages(folder: pathlib.Path) -> list[str]:
    return sorted(f"{path.relative_to(REPO_ROOT).as_posix()}/" for path in folder.iterdir()
                  if (path / "__init__.py").is_file())


def test_every_entry_of_the_tree_exists():
    entries = tree_entries(README.read_text())
    assert not _missing(entries), f"README.md's tree names what the repository lacks: {_missing(entries)}"


def test_every_room_and_step_is_in_the_tree():
    rooms = (_packages(REPO_ROOT / "pipeline") + _packages(REPO_ROOT / "components")
             + _packages(REPO_ROOT / "components" / "common") + [f"tests/{tier}/" for tier in TIERS])
    entries = set(tree_entries(README.read_text()))
    absent = [room for room in rooms if room not in entries]
    assert not absent, f"README.md's tree (## The code) leaves out: {absent}"
    assert len(rooms) > 20


def test_the_readme_stays_short():
    lines = len(README.read_text().splitlines())
    assert lines <= MOST_LINES, f"README.md has {lines} lines; at most {MOST_LINES}: move the depth into docs/"


def test_the_tree_is_read_as_nested_paths():
    text = "## The code\n\n```text\na/      x\n  b/    y\n    c.py  z\n  d.txt\ne/\n```\n## Next\n"
    assert tree_entries(text) == ["a/", "a/b/", "a/b/c.py", "a/d.txt", "e/"]
    assert _missing(["pipeline/", "pipeline/pipeline.yaml", "pipeline/no_such_room/", "setup.py/"]) == [
        "pipeline/no_such_room/", "setup.py/"]
