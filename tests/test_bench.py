"""The ``microvae bench`` machinery: registry, speed-ups over baselines, table, atomic JSON.
The real cases are timed by running the command (BENCHMARKS.md); here a tiny case stands in."""
import json
import time

import pytest

from microvae import bench
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
    assert {"s2", "compat", "labels", "mrf"} <= set(bench.CASES)
