"""Sphinx configuration of microvae's API reference (``make docs``; warnings are errors)."""
import microvae

project = "microvae"
author = "microvae contributors"
release = version = microvae.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.mathjax", "numpydoc"]
# Signatures show the defaults; the hints are in the code and the types in each docstring.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
# Public names without a docstring are listed too, so that numpydoc's GL08 check reports them.
autodoc_default_options = {"members": True, "undoc-members": True}
# Classes list their methods with full documentation below the class, not as stub tables.
numpydoc_show_class_members = False
# Every public object has a docstring (numpydoc's GL08 check).
numpydoc_validation_checks = {"GL08"}
html_theme = "alabaster"
html_theme_options = {"description": "microstructure-informed materials design", "page_width": "1100px"}
exclude_patterns = ["_build"]
