"""The ``microvae bench`` machinery: registry, speed-ups over baselines, table, atomic JSON.
The real cases are timed by running the command (BENCHMARKS.md); here a tiny case stands in."""
import json
import time

import pytest

from microvae.bench import registry as bench
from microvae.cli import main


@pytest.fixture
def tiny_case(monkeypatch):
    cases = {}
    monkeypatch.setattr(bench, "CASES", cases)

    def slow_and_fast(ctx):
        return [bench.row("slow", 10, bench.timed(lambda: time.sleep(0.02), ctx)),
                bench.row("fast", 10, bench.timed(lambda: time.sleep(0.005), ctx), baseline="slow")]
    bench.case("tiny", "two sleeps")(slow_and_fast)
    return cases


def test_run_computes_speedups_and_records_the_environment(tiny_case):
    report = bench.run(["tiny"], quick=True, devices=("cpu",))
    slow, fast = report["rows"]
    assert slow["case"] == fast["case"] == "tiny" and slow["speedup"] is None
    assert fast["speedup"] == pytest.approx(fast["rate"] / slow["rate"])
    assert 1.5 < fast["speedup"] < 5  # 20 ms against 5 ms per call
    env = report["environment"]
    assert env["devices"] == ["cpu"] and env["torch_threads"] >= 1 and env["versions"]["numpy"]
    table = bench.format_table(report)
    assert "fast" in table and "x (slow)" in table and "quick run" in table


def test_unknown_case_and_missing_baseline(tiny_case):
    with pytest.raises(ValueError, match="unknown benchmark case"):
        bench.run(["nope"])
    bench.case("broken", "bad baseline")(lambda ctx: [bench.row("a", 1, 1.0, baseline="missing")])
    with pytest.raises(RuntimeError, match="missing baseline"):
        bench.run(["broken"], devices=("cpu",))


def test_cli_writes_json_and_keeps_existing_files(tiny_case, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--cases", "tiny", "--device", "cpu", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["name"] for r in report["rows"]] == ["slow", "fast"]
    assert "fast" in capsys.readouterr().out
    out.write_text("keep")
    assert main(["bench", "--quick", "--cases", "tiny", "--json", str(out)]) == 2
    assert out.read_text() == "keep"
    assert main(["bench", "--list"]) == 0
    assert "tiny" in capsys.readouterr().out


def test_registered_cases_cover_the_issue():
    assert {"s2", "compat", "labels", "mrf", "losses", "train_step", "concurrent"} <= set(bench.CASES)


def test_loss_and_train_step_cases_run(monkeypatch):
    """The two cheap torch cases end to end, one timed round each (``concurrent`` starts six
    training subprocesses and times eight 5 s windows, too long for a test). The losses case
    raises if its three implementations disagree with the naive composition of ``style_loss``
    and ``mode_collapse_loss``."""
    context = bench.Context
    monkeypatch.setattr(bench, "Context", lambda **kw: context(**{**kw, "min_time": 0.0, "max_rounds": 1}))
    report = bench.run(["losses", "train_step"], quick=True, devices=("cpu",))
    rows = {r["name"]: r for r in report["rows"]}
    naive, step = "naive eager (separate losses), cpu 64²", "train step quick, eager losses (backend=torch)"
    assert list(rows) == [naive, "pure torch, shared Grams, cpu 64²", "fused compiled ops, cpu 64²", step,
                          "train step quick, fused losses (default)"]
    for r in rows.values():
        assert r["rate"] > 0 and r["unit"] == ("steps/s" if r["case"] == "train_step" else "images/s")
        if r["baseline"] is not None:
            assert r["baseline"] in (naive, step)
            assert r["speedup"] == pytest.approx(r["rate"] / rows[r["baseline"]]["rate"])
