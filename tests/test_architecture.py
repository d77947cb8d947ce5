"""The package's shape: no import cycle among seal's modules (imports inside functions included), no module
imported by name outside the one registry, and recipes that neither import each other nor are named by the
layers below them."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "seal"
REGISTRY = "seal.experiments"  # the one module allowed to import seal modules by name (its RECIPES)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The seal module an import names (`from seal.x import y` may name module seal.x.y or an attribute)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Every seal module `module` imports, at any depth of its code (functions included)."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        out |= {m for n in names if n.startswith("seal") and (m := _resolve(n)) and m != module}
    return out


def dynamic_imports(module: str) -> list[str]:
    """Calls of importlib.import_module / __import__ in `module` (by any spelling)."""
    tree = ast.parse(MODULES[module].read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__"):
                found.append(ast.unparse(node))
    return found


def graph() -> dict[str, set[str]]:
    g = {m: imports_of(m) for m in MODULES}
    from seal.experiments import RECIPES

    g[REGISTRY] |= set(RECIPES.values())  # the registry's by-name imports are edges too
    return g


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `g` as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_among_seal_modules():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_modules_are_imported_by_name_only_in_the_registry():
    offenders = {m: calls for m in MODULES if m != REGISTRY and (calls := dynamic_imports(m))}
    assert not offenders, f"import seal modules with import statements, not by name: {offenders}"
    assert dynamic_imports(REGISTRY), "the registry is expected to import the recipes by name"


@pytest.mark.parametrize("layer", ["seal.run", "seal.results", "seal.report", "seal.cli", "seal.backends",
                                   "seal.outer.restem"])
def test_shared_layers_name_no_recipe(layer):
    named = {m for m in imports_of(layer) if m.startswith("seal.experiments.")}
    assert not named, f"{layer} imports recipe modules {named}"


def test_recipes_never_import_each_other_and_stay_short():
    from seal.experiments import RECIPES

    for name, mod in RECIPES.items():
        others = {m for m in imports_of(mod) if m.startswith("seal.experiments")}
        assert not others, f"recipe {name} imports {others}"
        lines = len(MODULES[mod].read_text().splitlines())
        assert lines <= 240, f"recipe {name} is {lines} lines"
