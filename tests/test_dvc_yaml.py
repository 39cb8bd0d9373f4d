"""dvc.yaml stays honest: block lists, and every imported package module is a dependency."""

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py")
    if (base / "__init__.py").exists():
        return base / "__init__.py"
    return None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m == "pipeline" or m.startswith("pipeline.")}


def _closure(module: str) -> set[Path]:
    seen: set[Path] = set()
    todo = [module]
    while todo:
        mod = todo.pop()
        path = _module_file(mod)
        if path is None or path in seen:
            continue
        seen.add(path)
        parts = mod.split(".")
        for i in range(1, len(parts)):  # parent packages run their __init__
            todo.append(".".join(parts[:i]))
        todo.extend(_imports(path))
    return seen


def _stages():
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_dvc_yaml_uses_block_lists_only():
    text = (ROOT / "dvc.yaml").read_text()
    assert not re.search(r":\s*\[", text), "use block lists ('- item'), not flow style"


def test_every_imported_module_is_a_declared_dependency():
    for name, stage in _stages().items():
        match = re.match(r"python -m (\S+)", stage["cmd"])
        assert match, f"stage {name}: cmd should be `python -m pipeline.stages.<name>`"
        deps = [ROOT / d for d in stage.get("deps", [])]
        for path in _closure(match.group(1)):
            covered = any(path == d or d in path.parents for d in deps)
            assert covered, (
                f"stage {name} imports {path.relative_to(ROOT)} but does not depend on it"
            )


def test_closure_detects_a_missing_dependency():
    # The check itself can fail: the synthesize stage really imports the generator.
    closure = {p.relative_to(ROOT).as_posix() for p in _closure("pipeline.stages.synthesize")}
    assert "pipeline/synthetic/generator.py" in closure
    assert "pipeline/config.py" in closure


def test_no_stage_depends_on_code_it_does_not_import():
    # A superfluous dependency reruns a stage (and everything after it) for nothing.
    for name, stage in _stages().items():
        module = re.match(r"python -m (\S+)", stage["cmd"]).group(1)
        closure = _closure(module)
        for dep in stage.get("deps", []):
            if not dep.startswith("pipeline"):
                continue
            path = ROOT / dep
            used = any(p == path or path in p.parents for p in closure)
            assert used, f"stage {name} depends on {dep} but never imports it"


def test_stages_are_the_catalogs_in_its_order():
    from pipeline.catalog import STAGES

    stages = _stages()
    assert list(stages) == [s.name for s in STAGES]
    for s in STAGES:
        assert stages[s.name]["cmd"] == f"python -m {s.module}"
