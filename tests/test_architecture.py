"""The layer rules of ARCHITECTURE.md, checked on the source: each package imports only what it may."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "swiftall"
BASE = {"utils"}
MIDDLE = BASE | {"config", "hub", "models"}
ALLOWED = {
    "utils": BASE,
    "config": BASE | {"config"},
    "hub": BASE | {"config", "hub"},
    "models": MIDDLE,
    "templates": MIDDLE | {"templates"},
    "tuners": MIDDLE | {"tuners"},
    "data": MIDDLE | {"templates", "data"},
    "train": MIDDLE | {"templates", "tuners", "data", "train"},
    "infer": MIDDLE | {"templates", "tuners", "infer"},
    "eval": MIDDLE | {"templates", "data", "infer", "eval"},
    "export": MIDDLE | {"templates", "tuners", "export"},
    "plan": MIDDLE | {"plan"},
    "pipelines": MIDDLE | {"templates", "tuners", "data", "train", "infer", "eval", "export", "pipelines", "serve",
                  "webui", "plan"},
    "serve": MIDDLE | {"templates", "infer", "serve"},
    "webui": MIDDLE | {"templates", "infer", "pipelines", "webui", "plan"},
    "cli": None,  # the top: anything, imported on demand
}


def imported_packages(path: Path) -> set[str]:
    """swiftall sub-packages a module imports (at any depth in the file, lazy imports included)."""
    tree = ast.parse(path.read_text())
    package_parts = path.relative_to(ROOT).parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package_parts[: len(package_parts) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # `from .. import x` at the top: x are packages
                    target = [node.names[0].name]
            elif node.module and node.module.startswith("swiftall."):
                target = node.module.split(".")[1:]
            else:
                continue
            found.add(target[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("swiftall."):
                    found.add(alias.name.split(".")[1])
    return found


MODULES = sorted(p for p in ROOT.rglob("*.py") if len(p.relative_to(ROOT).parts) > 1)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_layers_point_down(path):
    package = path.relative_to(ROOT).parts[0]
    allowed = ALLOWED.get(package)
    assert package in ALLOWED, f"{package}: a package ARCHITECTURE.md does not know"
    if allowed is None:
        return
    bad = imported_packages(path) - allowed - {package}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("package", ["config", "utils", "cli"])
def test_light_packages_do_not_import_torch_at_module_level(package):
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.parse(path.read_text()).body:  # top-level statements only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in ("torch", "transformers") for n in names), path


def test_environment_is_read_only_in_utils_env():
    for path in ROOT.rglob("*.py"):
        if path.relative_to(ROOT).as_posix() == "utils/env.py":
            continue
        text = path.read_text()
        assert "os.environ" not in text and "os.getenv" not in text, path


def test_shape_small_files_and_functions():
    """ARCHITECTURE.md's habits as numbers: modules under 400 lines, functions under 60."""
    long_files, long_functions = [], []
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > 400:
            long_files.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not long_files, long_files
    assert not long_functions, long_functions
