"""Import costs and the compiled extensions: ``import microvae`` stays light, a missing build is
loud, and a test run that expects the build (``MICROVAE_EXPECT_COMPILED=1``, set by ``make test``)
fails without it."""
import json
import os
import subprocess
import sys

import pytest

from microvae.cli import main
from microvae.cli.info import compiled_modules


def _python(code, **env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return out


def test_import_loads_neither_torch_nor_numba():
    out = _python("import sys, microvae, microvae.correlations; "
                  "print(sorted(m for m in ('torch', 'numba') if m in sys.modules))")
    assert out.stdout.strip() == "[]"


def test_label_is_resolved_on_first_use():
    out = _python("import sys, microvae; assert 'numba' not in sys.modules; "
                  "from microvae.properties import label; assert microvae.label is label; "
                  "print('label' in dir(microvae))")
    assert out.stdout.strip() == "True"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        import microvae

        _ = microvae.nonexistent


def test_failed_extension_import_warns_and_falls_back():
    # sys.modules[name] = None makes ``from . import _C`` raise ImportError, as a broken build would.
    code = """
import sys, warnings
sys.modules["microvae._C"] = None
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from microvae import ops
import torch
assert not ops.compiled_available() and isinstance(ops.compiled_import_error(), ImportError)
assert ops.resolve_backend("auto", torch.zeros(1)) == "torch"
try:
    ops.gram(torch.zeros(1, 2, 3), backend="cpp")
except RuntimeError as exc:
    print("RAISED", exc)
print("WARNINGS", len(caught), caught[0].category.__name__, caught[0].message)
"""
    out = _python(code).stdout
    assert "RAISED backend='cpp' needs the compiled extension, which failed to import" in out
    assert ("WARNINGS 1 RuntimeWarning microvae: the compiled extension microvae._C failed to import "
            "(ModuleNotFoundError: import of microvae._C halted") in out


def test_compiled_modules_found():
    mods = {m["module"]: m for m in compiled_modules()}
    assert {"microvae._C", "microvae.correlations._s3_sampling"} <= set(mods)


@pytest.mark.skipif(os.environ.get("MICROVAE_EXPECT_COMPILED") != "1",
                    reason="MICROVAE_EXPECT_COMPILED=1 not set (make test and CI set it)")
def test_compiled_extensions_built_when_expected():
    """Fails, rather than letting every compiled-op test skip, when the build is expected."""
    broken = {m["module"]: m["error"] for m in compiled_modules() if not m["ok"]}
    assert not broken, f"compiled extensions missing or broken: {broken}"


def test_info_command(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["microvae"] and info["torch"]["version"]
    assert {m["module"] for m in info["compiled"]} >= {"microvae._C"}
    assert info["threads"]["microvae"] >= 1 and info["threads"]["affinity_cpus"] >= 1
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "microvae._C" in text and "threads" in text
