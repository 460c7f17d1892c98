"""The house rules: which room of the code may import which.

A step never imports another step: what two steps share (file names, record formats, the base
network, head training) lives in `components/common/`, which imports no step. The components never
import `pipeline`, and inside `pipeline/` and `components/common/` each room imports only the rooms
below it (`ROOM_IMPORTS`, `COMMON_ROOM_IMPORTS`).
These tests read the source, so an import inside a function (where components import their cores)
counts as much as one at the top.
"""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
COMPONENTS = REPO / "components"
PIPELINE = REPO / "pipeline"
STEPS = sorted(path.name for path in COMPONENTS.iterdir() if (path / "component.py").exists())
# Modules of the components package that belong to no step and import none.
SHARED = {"common", "container_image"}


# The rooms of `pipeline/` and the rooms each may import. The definition is the bottom; the
# runners, serving and reporting stand on it side by side and never on each other, so serving
# never pulls in the local runner; the CLI joins them; the development tools may use anything.
ROOM_IMPORTS = {
    "definition": set(),
    "local": {"definition"},
    "cluster": {"definition"},
    "serving": set(),
    "reporting": set(),
    "cli": {"definition", "local", "cluster", "serving", "reporting"},
    "devtools": {"definition", "local", "cluster", "serving", "reporting", "cli"},
}

# The rooms of `components/common/` and the rooms each may import: storage at the bottom, then the
# typed configuration, image pixels, and the contract's readers and writers; what a step's process
# does stands beside them on storage alone; the model uses them all. The contract's file names
# (`contract/artifact_files.py`) import nothing, so every room may import them.
COMMON_ROOM_IMPORTS = {
    "storage": set(),
    "config": {"storage"},
    "images": {"config"},
    "contract": {"storage", "config", "images"},
    "runtime": {"storage"},
    "model": {"storage", "config", "images", "contract", "runtime"},
}
FILE_NAMES = "components.common.contract.artifact_files"


def _imported_names(path: pathlib.Path) -> set[str]:
    """Every absolute module name a module imports; `from a import b` counts as `a.b` too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _imported_packages(path: pathlib.Path, top: str) -> set[str]:
    """The second part of every `top.X...` name a module imports: for `components`, its step or `common`."""
    return {name.split(".")[1] for name in _imported_names(path) if name.startswith(f"{top}.")}


def _imported_components_packages(path: pathlib.Path) -> set[str]:
    return _imported_packages(path, "components")


def test_every_step_is_found():
    assert {"ingest", "preprocess", "extract_features", "train_head", "fine_tune", "transfer_lift", "evaluate",
            "push"} <= set(STEPS)


@pytest.mark.parametrize("step", STEPS)
def test_a_step_imports_only_itself_and_common(step):
    strays = {}
    for path in sorted((COMPONENTS / step).rglob("*.py")):
        others = _imported_components_packages(path) - SHARED - {step}
        if others:
            strays[str(path.relative_to(COMPONENTS))] = sorted(others)
    assert not strays, f"modules that import another step (move what they share to components/common): {strays}"


def test_common_imports_no_step():
    strays = {str(path.relative_to(COMPONENTS)): sorted(_imported_components_packages(path) - SHARED)
              for path in sorted((COMPONENTS / "common").rglob("*.py"))}
    assert not {path: steps for path, steps in strays.items() if steps}


def test_the_rule_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from components.train_head import core\n    import components.ingest.core\n")
    assert _imported_components_packages(module) == {"train_head", "ingest"}


def test_the_components_never_import_the_pipeline():
    strays = sorted(str(path.relative_to(REPO)) for path in COMPONENTS.rglob("*.py")
                    if any(name == "pipeline" or name.startswith("pipeline.") for name in _imported_names(path)))
    assert not strays, f"components that import pipeline/ (the steps stand alone): {strays}"


def test_every_pipeline_module_is_in_a_room():
    rooms = {path.name for path in PIPELINE.iterdir() if (path / "__init__.py").exists()}
    assert rooms == set(ROOM_IMPORTS)
    assert sorted(path.name for path in PIPELINE.glob("*.py")) == ["__init__.py"]


@pytest.mark.parametrize("room", sorted(ROOM_IMPORTS))
def test_a_pipeline_room_imports_only_the_rooms_below_it(room):
    strays = {}
    for path in sorted((PIPELINE / room).rglob("*.py")):
        others = _imported_packages(path, "pipeline") - ROOM_IMPORTS[room] - {room}
        if others:
            strays[str(path.relative_to(REPO))] = sorted(others)
    assert not strays, f"modules that import a room {room} may not (see ROOM_IMPORTS): {strays}"


def test_the_room_rule_sees_every_form_of_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from pipeline.local import local_run\n    import pipeline.cli.commands\n"
                      "from pipeline import serving\n")
    assert _imported_packages(module, "pipeline") == {"local", "cli", "serving"}


def test_every_common_module_is_in_a_room():
    common = COMPONENTS / "common"
    assert {path.name for path in common.iterdir() if (path / "__init__.py").exists()} == set(COMMON_ROOM_IMPORTS)
    assert sorted(path.name for path in common.glob("*.py")) == ["__init__.py"]


def test_the_file_names_import_nothing():
    path = COMPONENTS / "common" / "contract" / "artifact_files.py"
    assert not _imported_names(path), "artifact_files is the bottom every room may import: it imports nothing"


@pytest.mark.parametrize("room", sorted(COMMON_ROOM_IMPORTS))
def test_a_common_room_imports_only_the_rooms_below_it(room):
    strays = {}
    for path in sorted((COMPONENTS / "common" / room).rglob("*.py")):
        names = {name for name in _imported_names(path) if not name.startswith(FILE_NAMES)}
        rooms = {name.split(".")[2] for name in names if name.startswith("components.common.") and name.count(".") >= 2}
        if rooms - COMMON_ROOM_IMPORTS[room] - {room}:
            strays[str(path.relative_to(COMPONENTS))] = sorted(rooms - COMMON_ROOM_IMPORTS[room] - {room})
    assert not strays, f"modules that import a room {room} may not (see COMMON_ROOM_IMPORTS): {strays}"
