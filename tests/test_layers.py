"""The package's import structure: layers import only downwards, no module reaches into another
module's private names, and there are no import cycles (docs/design.md, "Layers and data flow").

Imports are read from the source with ``ast`` (function-local imports included), so the test
needs no compiled extension and imports nothing heavy.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "microvae"

# Top-level modules and packages of microvae by layer, lowest first. A module may import modules
# of its own group (package) and of lower layers only; groups in one layer are independent.
LAYERS = [
    {"_version", "_validate", "_C", "_spectral", "choices"},  # version, input checks, compiled kernels, option names
    {"_tensor", "threads"},  # torch-tensor inputs, thread pools
    {"io", "synthetic", "fullfield", "ops", "augment"},  # files and stores; test media; reference solvers;
    # compiled ops; symmetries of the square
    {"correlations", "plotting", "datasets"},  # datasets: real data fetched into files io reads
    {"morphology", "c2st"},  # descriptors beyond S2; the classifier two-sample test
    {"properties", "compat", "mrf", "nn"},
    {"compare"},  # fidelity of image sets: descriptors, labels, the classifier test
    {"labeling", "vae"},  # label at scale; train and sample the VAE
    {"study", "bench", "train", "distributed"},  # train and distributed: deprecated re-exports
    {"cli"},
    {"__main__"},
]
# The package's own __init__ imports only what `import microvae` must load (no torch, no numba).
ROOT_IMPORTS = {"_version", "threads"}


def _modules():
    """``{dotted name: (path, is package)}`` of every Python module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


MODULES = _modules()
# Compiled modules (Cython, the torch extension) are imported like Python modules.
KNOWN = set(MODULES) | {"microvae._C"} | {
    ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts) for p in PACKAGE.rglob("*.pyx")}


def _imports(name, path, is_package):
    """``(line, imported module, imported name or None)`` for every import of microvae code."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "microvae"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "microvae":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub, None) if sub in KNOWN else (node.lineno, target, alias.name))
    return found


def _group(module):
    """The top-level module or package of a dotted name (``microvae`` itself for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "microvae"


def _layer(group):
    for level, groups in enumerate(LAYERS):
        if group in groups:
            return level
    raise AssertionError(f"microvae.{group} is in no layer of tests/test_layers.py: add it (and to docs/design.md)")


EDGES = {name: _imports(name, path, is_package) for name, (path, is_package) in MODULES.items()}


def test_every_module_has_a_layer():
    for name in MODULES:
        if name != "microvae":
            _layer(_group(name))


def test_layers_import_only_downwards():
    wrong = []
    for name, imports in EDGES.items():
        group = _group(name)
        for line, target, _ in imports:
            other = _group(target)
            if name == "microvae":
                if target.split(".")[1] not in ROOT_IMPORTS:
                    wrong.append(f"microvae/__init__.py:{line} imports {target}")
            elif other == "microvae":
                wrong.append(f"{name}:{line} imports the package root (import the module that defines the name)")
            elif other != group and _layer(other) >= _layer(group):
                wrong.append(f"{name}:{line} imports {target} (layer {_layer(other)} from layer {_layer(group)})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_module_imports_private_names_of_another():
    wrong = []
    for name, imports in EDGES.items():
        for line, target, imported in imports:
            if imported and imported.startswith("_") and not imported.startswith("__") and target != name:
                wrong.append(f"{name}:{line} imports {imported} from {target}")
        # Attribute access on an imported module: `from .. import train; train._Session`.
        path, _ = MODULES[name]
        aliases = {a.asname or a.name for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("microvae"))
                   for a in node.names if not a.name.startswith("_")}
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                wrong.append(f"{name}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not wrong, "private names used across modules (make them public or move them):\n" + "\n".join(wrong)


def test_no_import_cycles():
    # Edges between Python modules (a package stands for its __init__): a submodule that imports
    # a name from its own package's __init__, which imports that submodule, is a cycle too.
    graph = {name: {t for _, t, _ in imports if t in MODULES and t != name} for name, imports in EDGES.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_each_module_group_is_described_in_the_design():
    design = (PACKAGE.parent / "docs" / "design.md").read_text()
    groups = {_group(n) for n in MODULES} - {"microvae", "__main__", "_version"}
    missing = sorted(g for g in groups if f"{g}" not in design)
    assert not missing, "docs/design.md does not describe " + ", ".join(f"microvae.{g}" for g in missing)
