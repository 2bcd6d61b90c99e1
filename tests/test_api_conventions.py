"""The API convention of CONTRIBUTING.md, checked over the whole public API: options
keyword-only after the data argument, type hints on every public function, one name per idea,
and the package metadata that carries the hints (py.typed) and the licence."""
from pathlib import Path

import pytest

# Functions of the public API whose options are still positional (CONTRIBUTING.md, "API
# convention"). The list may only shrink: a new function must follow it.
KNOWN_POSITIONAL_OPTIONS = {
    # The seed is the generator's whole state: the data of the constructor, not an option.
    "microvae.mrf.reference.SplitMix64.__init__": ["seed"],
    # benchmarks/bench_mrf.py calls it with a positional seed; it goes when that call does.
    "microvae.mrf.reference.sample_reference": ["seed"],
}


def _public_functions():
    import dataclasses
    import importlib
    import inspect
    import pkgutil

    import microvae

    for info in pkgutil.walk_packages(microvae.__path__, "microvae."):
        parts = info.name.split(".")[1:]
        # The deprecated re-export modules (train, distributed) hold no functions of their own.
        if any(p.startswith("_") for p in parts) or parts[0] in ("cli", "bench", "train", "distributed"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__ == module.__name__ and not dataclasses.is_dataclass(obj):
                for attr, fn in vars(obj).items():
                    if inspect.isfunction(fn) and (attr == "__init__" or not attr.startswith("_")):
                        yield f"{module.__name__}.{name}.{attr}", fn


def test_options_are_keyword_only_after_the_data_argument():
    import inspect

    options = {"periodic", "seed", "workers", "batch_size", "device"}
    found = {}
    for qualname, fn in _public_functions():
        params = list(inspect.signature(fn).parameters.values())[1:]  # the data argument may be positional
        positional = [p.name for p in params if p.name in options and p.kind is p.POSITIONAL_OR_KEYWORD]
        if positional:
            found[qualname] = positional
    new = {k: v for k, v in found.items() if KNOWN_POSITIONAL_OPTIONS.get(k) != v}
    assert not new, f"options must be keyword-only (after *): {new}"
    fixed = set(KNOWN_POSITIONAL_OPTIONS) - set(found)
    assert not fixed, f"these follow the convention now: remove them from KNOWN_POSITIONAL_OPTIONS: {fixed}"
    assert "microvae.labeling.chunks.label_dask" in dict(_public_functions())  # the scan sees the package


def test_public_functions_have_type_hints():
    """CONTRIBUTING.md, "Type hints on public functions": every function in a public module's
    ``__all__`` (and the methods of its classes) annotates its parameters and its result."""
    import inspect

    bare = {}
    for qualname, fn in _public_functions():
        if not fn.__module__.startswith("microvae."):
            continue  # inherited from the standard library (a Protocol's __init__)
        sig = inspect.signature(fn)
        names = [p.name for p in sig.parameters.values()
                 if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        without = [n for n in names if sig.parameters[n].annotation is inspect.Parameter.empty]
        if fn.__name__ != "__init__" and sig.return_annotation is inspect.Signature.empty:
            without.append("return")
        if without:
            bare[qualname] = without
    assert not bare, f"public functions without type hints: {bare}"
    assert "microvae.vae.train.train_vae" in dict(_public_functions())  # the scan sees the package


def test_package_ships_py_typed_and_its_licence():
    """The type hints reach users only with the py.typed marker in the package data; the licence
    is declared (SPDX) and shipped."""
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT" and project["project"]["license-files"] == ["LICENSE"]
    assert (root / "LICENSE").read_text().startswith("MIT License")
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["microvae"]
    assert (root / "microvae" / "py.typed").is_file()


def test_one_name_per_idea():
    """batch_size (not chunk_size) for images per unit of work; workers = threads of one call."""
    import inspect

    for qualname, fn in _public_functions():
        names = set(inspect.signature(fn).parameters)
        assert "chunk_size" not in names, qualname
        assert "n_workers" not in names and "processes" not in names or "workers" not in names, qualname
