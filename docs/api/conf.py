"""Sphinx configuration of microvae's API reference (``make docs``; warnings are errors).

The pages are generated here, at configuration time, from the package itself: every name in a
public module's ``__all__`` is documented once, on the page of the most public module that
exports it (``microvae.properties.label``, not ``microvae.properties.label.label``), so a new
public function appears without editing a page, and one without a docstring fails the build.
"""
import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import microvae

project = "microvae"
author = "microvae contributors"
release = version = microvae.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.mathjax", "numpydoc"]
# Signatures show the defaults; the hints are in the code and the types in each docstring.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
# Listed public names without a docstring are kept, so that numpydoc's GL08 check reports them.
autodoc_default_options = {"undoc-members": True}
# Classes document their methods in full below the class, not as stub tables.
numpydoc_show_class_members = False
numpydoc_validation_checks = {"GL08"}
html_theme = "alabaster"
html_theme_options = {"description": "microstructure-informed materials design", "page_width": "1100px"}
exclude_patterns = ["_build"]

# Not part of the reference: the command line (documented by `microvae --help` and the README)
# and modules kept only as deprecated import paths.
SKIP = ("microvae.cli", "microvae.__main__", "microvae.train", "microvae.distributed")
HERE = Path(__file__).parent
GENERATED = HERE / "generated"


def _public_modules():
    mods = {"microvae": microvae}
    for info in pkgutil.walk_packages(microvae.__path__, "microvae."):
        name = info.name
        if any(part.startswith("_") for part in name.split(".")) or name.startswith(SKIP):
            continue
        mods[name] = importlib.import_module(name)
    return mods


def _assigned_here(module, name):
    """Whether ``name`` is bound by an assignment at the top level of ``module``'s source."""
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


def _homes(mods):
    """``{module name: [names documented on its page]}``."""
    exports = {m: list(getattr(mod, "__all__", ())) for m, mod in mods.items()}
    homes = {m: [] for m in mods}
    for m, names in exports.items():
        for name in names:
            obj = getattr(mods[m], name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                origin = obj.__module__
            else:
                origin = next((o for o, n in exports.items() if name in n and getattr(mods[o], name) is obj
                               and _assigned_here(mods[o], name)), m)
            # The most public module exporting the same object: the highest package above its origin.
            parts = origin.split(".")
            home = next((".".join(parts[:k]) for k in range(1, len(parts) + 1)
                         if ".".join(parts[:k]) in exports and name in exports[".".join(parts[:k])]
                         and getattr(mods[".".join(parts[:k])], name) is obj), m)
            if home == m:
                homes[m].append(name)
    return homes


def _write_pages():
    mods = _public_modules()
    homes = _homes(mods)
    GENERATED.mkdir(exist_ok=True)
    for old in GENERATED.glob("*.rst"):
        old.unlink()
    for m in sorted(mods):
        lines = [m, "=" * len(m), "", f".. automodule:: {m}"]
        if homes[m]:
            lines.append(f"   :members: {', '.join(homes[m])}")
        (GENERATED / f"{m}.rst").write_text("\n".join(lines) + "\n")


_write_pages()


def _skip_routing_methods(app, what, name, obj, skip, options):
    # scikit-learn adds `set_*_request` metadata-routing methods to every estimator subclass.
    return True if name.startswith("set_") and name.endswith("_request") else None


def setup(app):
    app.connect("autodoc-skip-member", _skip_routing_methods)
