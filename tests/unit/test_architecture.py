"""The house rules that keep steps apart: a step never imports another step.

What two steps share (file names, record formats, the base network, head training) lives in
`components/common/`, which imports no step. These tests read the source, so an import inside a
function (where components import their cores) counts as much as one at the top.
"""

import ast
import pathlib

import pytest

COMPONENTS = pathlib.Path(__file__).resolve().parents[2] / "components"
STEPS = sorted(path.name for path in COMPONENTS.iterdir() if (path / "component.py").exists())
# Modules of the components package that belong to no step and import none.
SHARED = {"common", "image"}


def _imported_components_packages(path: pathlib.Path) -> set[str]:
    """The second part of every `components.X...` name a module imports: its step or `common`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "components" else [
                f"components.{alias.name}" for alias in node.names]
        found.update(name.split(".")[1] for name in names if name.startswith("components.") and "." in name)
    return found


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
