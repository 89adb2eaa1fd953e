"""dvc.yaml's code deps cannot drift from the code: each stage lists exactly the library modules its
script imports (transitively, static imports anywhere in a module, within src/minisd)."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "minisd"


def module_file(name: str) -> Path | None:
    if name != "minisd" and not name.startswith("minisd."):
        return None
    path = ROOT / "src" / Path(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imports_of(file: Path) -> set[Path]:
    """Library files a file imports: `import a.b`, `from a.b import c` (c a module or a name)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                target = module_file(".".join(parts[:i]))
                if target:
                    found.add(target)
    return found


def closure(script: Path) -> set[Path]:
    seen, todo = set(), [script]
    while todo:
        for target in imports_of(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return {p for p in seen if p.read_text().strip() or p.name != "__init__.py"}


def covered(file: Path, deps: list[Path]) -> bool:
    return any(file == dep or dep in file.parents for dep in deps)


def stage_code_deps():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        script = ROOT / stage["cmd"].split()[-1]
        deps = [ROOT / d for d in stage["deps"] if d.startswith("src/")]
        yield name, script, deps


def test_every_imported_module_is_a_dep_and_every_dep_is_imported():
    problems = []
    for name, script, deps in stage_code_deps():
        used = closure(script)
        missing = sorted(str(f.relative_to(ROOT)) for f in used if not covered(f, deps))
        unused = sorted(str(d.relative_to(ROOT)) for d in deps if not any(covered(f, [d]) for f in used))
        if missing:
            problems.append(f"{name}: imports but does not list {missing}")
        if unused:
            problems.append(f"{name}: lists but never imports {unused}")
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_dropped_dep():
    name, script, deps = next(s for s in stage_code_deps() if s[0] == "evaluate")
    shards = PACKAGE / "shards.py"
    assert shards in closure(script)
    assert not covered(shards, [d for d in deps if d != shards])
