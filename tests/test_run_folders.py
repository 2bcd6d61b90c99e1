"""Run and study folders: marked by microvae when it makes them, and only marked folders (or old
run folders that pass the strict rule) are resumed or emptied; a process writing in one holds its
lock, so a second one is refused; a failed new run leaves no folder behind."""
import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch

from microvae.cli import main
from microvae.io import folders

# Models trained for a step or two are collapsed by design.
pytestmark = pytest.mark.filterwarnings("ignore::microvae.vae.CollapseWarning")

KIND, NAMES = "test-run", ("config.json", "checkpoint.pt", "samples")


def _legacy(path):
    try:
        return "config" in json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False


def _claim(path):
    return folders.claim(path, KIND, names=NAMES, legacy=_legacy, what="run")


def test_a_new_or_empty_folder_is_claimed_and_marked(tmp_path):
    assert _claim(tmp_path / "new") is True
    assert folders.owned(tmp_path / "new", KIND)
    marker = json.loads((tmp_path / "new" / folders.MARKER).read_text())
    assert marker["kind"] == KIND and "microvae_version" in marker
    (tmp_path / "empty").mkdir()
    assert _claim(tmp_path / "empty") is True
    assert _claim(tmp_path / "new") is False  # already ours


def test_a_folder_microvae_did_not_make_is_never_claimed(tmp_path):
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "config.json").write_text('{"name": "app"}')
    (proj / "src" / "main.py").write_text("x")
    with pytest.raises(FileExistsError, match=r"proj exists and is not empty, and holds no microvae run \(it holds "
                                              r"'src', which microvae did not write\)"):
        _claim(proj)
    (proj / "src" / "main.py").unlink()
    (proj / "src").rmdir()
    with pytest.raises(FileExistsError, match="its settings file is not one microvae wrote"):
        _claim(proj)
    assert not (proj / folders.MARKER).exists() and not (proj / folders.LOCK).exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="exists and is not a folder"):
        _claim(tmp_path / "file")
    other = tmp_path / "other"
    folders.claim(other, "another-kind", names=(), legacy=_legacy, what="x")
    with pytest.raises(FileExistsError, match="a microvae folder of another kind .* holds no microvae run"):
        _claim(other)


def test_an_old_run_folder_passes_the_strict_rule_and_is_marked(tmp_path):
    old = tmp_path / "old"
    (old / "samples").mkdir(parents=True)
    (old / "config.json").write_text('{"config": {}}')
    (old / "checkpoint.pt").write_bytes(b"x")
    assert _claim(old) is False and folders.owned(old, KIND)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "config.json").write_text('{"config": {}}')
    (tmp_path / "notes" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="'notes.txt', which microvae did not write"):
        _claim(tmp_path / "notes")


def test_clear_removes_only_what_the_run_writes(tmp_path):
    run = tmp_path / "run"
    _claim(run)
    (run / "samples").mkdir()
    (run / "samples" / "a.png").write_bytes(b"x")
    (run / "config.json").write_text("{}")
    (run / "mine.txt").write_text("mine")
    assert folders.clear(run, NAMES) == ["config.json", "samples"]
    assert sorted(p.name for p in run.iterdir()) == [folders.MARKER, "mine.txt"]


def _hold(path, ready, release):
    with folders.lock(path, f"the run in {path}"):
        ready.set()
        release.wait(30)


def test_a_second_process_is_refused_while_the_first_holds_the_lock(tmp_path):
    _claim(tmp_path / "run")
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path / "run", ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(FileExistsError, match=rf"another microvae process \(pid {holder.pid} on .*\) is writing "
                                                  r"the run in .*run; wait for it to end, or choose another output"):
            with folders.lock(tmp_path / "run", f"the run in {tmp_path / 'run'}"):
                pass
    finally:
        release.set()
        holder.join(30)
    with folders.lock(tmp_path / "run", "the run"):  # released when its holder ended
        pass


def test_a_lock_dies_with_its_process(tmp_path):
    _claim(tmp_path / "run")
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path / "run", ready, release))
    holder.start()
    assert ready.wait(60)
    holder.kill()
    holder.join(30)
    with folders.lock(tmp_path / "run", "the run"):
        pass


# ---------------------------------------------------------------------- training runs

TRAIN = ["--image-size", "16", "--channels", "4,8", "--batch-size", "2", "--style-mode", "none", "--no-progress",
         "--sample-every", "0", "--device", "cpu"]


def _tree(path):
    """Every entry and its bytes, but the lock file (which a process holding the lock writes)."""
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None for p in sorted(path.rglob("*"))
            if p.name != folders.LOCK}


@pytest.fixture
def src(tmp_path):
    from conftest import write_images

    return write_images(tmp_path / "in.npy", n=4, size=16)


def test_train_overwrite_leaves_a_project_with_a_config_json_alone(tmp_path, capsys, src):
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "config.json").write_text('{"name": "app"}')
    (proj / "src" / "main.py").write_text("print(1)")
    (proj / "data.csv").write_text("a\n")
    (proj / "in.npy").write_bytes(src.read_bytes())  # the training input inside it, too
    before = _tree(proj)
    assert main(["train", str(proj / "in.npy"), "-o", str(proj), "--overwrite", "--steps", "1", *TRAIN]) == 2
    err = capsys.readouterr().err
    assert "holds no microvae run" in err and "which microvae did not write" in err and err.count("\n") == 1
    assert _tree(proj) == before


def test_train_overwrite_removes_only_what_a_run_writes(tmp_path, capsys, src):
    run = tmp_path / "run"
    assert main(["train", str(src), "-o", str(run), "--steps", "2", "--checkpoint-every", "1", *TRAIN]) == 0
    (run / "notes.txt").write_text("mine")
    assert main(["train", str(src), "-o", str(run), "--overwrite", "--steps", "1", *TRAIN]) == 0
    assert (run / "notes.txt").read_text() == "mine"
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 1
    # An old run folder (no marker) with something else in it is not a run folder.
    (run / folders.MARKER).unlink()
    assert main(["train", str(src), "-o", str(run), "--overwrite", "--steps", "1", *TRAIN]) == 2
    assert "'notes.txt', which microvae did not write" in capsys.readouterr().err
    # Without it, it is, and it is marked.
    (run / "notes.txt").unlink()
    assert main(["train", str(src), "-o", str(run), "--resume", "--steps", "2", *TRAIN]) == 0
    assert folders.owned(run, "vae-run")


def _hold_lock(path, ready, release):
    from microvae.io import folders

    with folders.lock(path, f"the run in {path}"):
        ready.set()
        release.wait(60)


def test_a_second_training_run_into_the_same_folder_is_refused(tmp_path, capsys, src):
    run = tmp_path / "run"
    assert main(["train", str(src), "-o", str(run), "--steps", "1", *TRAIN]) == 0
    before = _tree(run)
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(run, ready, release))  # a run writing in it right now
    holder.start()
    try:
        assert ready.wait(60)
        for flag in ("--resume", "--overwrite"):
            assert main(["train", str(src), "-o", str(run), flag, "--steps", "2", *TRAIN]) == 2
            assert "another microvae process" in capsys.readouterr().err
        assert _tree(run) == before
    finally:
        release.set()
        holder.join(60)
    assert main(["train", str(src), "-o", str(run), "--resume", "--steps", "2", *TRAIN]) == 0


def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path, capsys, src):
    run = tmp_path / "run"
    assert main(["train", str(src), "-o", str(run), "--steps", "1", *TRAIN[:7], "paired", *TRAIN[8:],
                 "--style-width", "1", "--style-weights", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err and not run.exists()
    # Diverged: the folder goes, and the advice can be followed as it is given.
    argv = ["train", str(src), "-o", str(run), "--steps", "8", "--checkpoint-every", "0", *TRAIN]
    assert main(argv + ["--lr", "1e30"]) == 2
    err = capsys.readouterr().err
    assert "before its first checkpoint, so the run folder was removed: start it again with a lower --lr" in err
    assert "intact" not in err and "Traceback" not in err and not run.exists()
    assert main(argv + ["--lr", "1e-3"]) == 0


def test_after_a_divergence_the_last_checkpoint_resumes_with_a_lower_lr(tmp_path, capsys, src, monkeypatch):
    from microvae.vae import trainer

    run = tmp_path / "run"
    argv = ["train", str(src), "-o", str(run), "--checkpoint-every", "2", *TRAIN]
    assert main(argv + ["--steps", "2"]) == 0
    real = trainer.Trainer.step

    def poisoned(self, step):  # the weights turn to NaN after the checkpoint, as with too high an lr
        out = real(self, step)
        if step > 2:
            with torch.no_grad():
                next(self.vae.parameters()).fill_(float("nan"))
        return out
    monkeypatch.setattr(trainer.Trainer, "step", poisoned)
    assert main(argv + ["--steps", "10", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "the checkpoint of step 2, before it, is intact: resume from it (--resume) with a lower --lr" in err
    monkeypatch.undo()
    assert main(argv + ["--steps", "4", "--resume", "--lr", "1e-4"]) == 0
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 4 and ckpt["optimizer"]["param_groups"][0]["lr"] == 1e-4


def test_weights_without_numbers_are_never_checkpointed(tmp_path, capsys, src, monkeypatch):
    """A divergence between two logged steps is caught before the checkpoint (it once ended in a
    Cholesky error of the sample check)."""
    from microvae.vae import trainer

    real = trainer.Trainer.step

    def poisoned(self, step):
        out = real(self, step)
        with torch.no_grad():
            next(self.vae.parameters()).fill_(float("nan"))
        return out
    monkeypatch.setattr(trainer.Trainer, "step", poisoned)
    run = tmp_path / "run"
    assert main(["train", str(src), "-o", str(run), "--steps", "8", "--checkpoint-every", "1", *TRAIN]) == 2
    err = capsys.readouterr().err
    assert "training diverged by step 1 (weights no longer finite)" in err and not run.exists()


def test_resume_tolerates_a_cut_last_metrics_line_and_names_a_damaged_one(tmp_path, capsys, src):
    run = tmp_path / "run"
    argv = ["train", str(src), "-o", str(run), "--checkpoint-every", "2", *TRAIN]
    assert main(argv + ["--steps", "2"]) == 0
    log = run / "metrics.jsonl"
    good = log.read_text()
    log.write_text(good + '{"step": 3, "lo')  # killed while appending
    assert main(argv + ["--steps", "4", "--resume"]) == 0
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]  # the cut line is gone, the run went on
    log.write_text('{"step": 1, "lo\n' + log.read_text())
    assert main(argv + ["--steps", "6", "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{log} line 1 is damaged" in err and "Unterminated" not in err.split("(")[0]


def test_a_checkpoint_of_another_version_says_so(tmp_path, capsys, src):
    run = tmp_path / "run"
    assert main(["train", str(src), "-o", str(run), "--steps", "1", *TRAIN]) == 0
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["config"]["future_knob"] = 3
    ckpt["provenance"]["microvae_version"] = "9.0"
    torch.save(ckpt, run / "checkpoint.pt")
    for argv in (["sample", str(run), "-n", "2", "-o", str(tmp_path / "s.npz")],
                 ["train", str(src), "-o", str(run), "--resume", "--steps", "2", *TRAIN]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "was written by microvae 9.0 with settings this microvae" in err and "(future_knob)" in err
        assert "__init__" not in err
    ckpt["version"] = 2
    torch.save(ckpt, run / "checkpoint.pt")
    assert main(["sample", str(run), "-n", "2", "-o", str(tmp_path / "s.npz")]) == 2
    assert "format version 2 (written by microvae 9.0) is not supported" in capsys.readouterr().err


# ---------------------------------------------------------------------- studies

def test_reproduce_overwrite_leaves_a_folder_that_is_not_a_study_alone(tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "models" / "vae").mkdir(parents=True)
    (mine / "config.json").write_text('{"x": 1}')
    (mine / "report.md").write_text("my report")
    (mine / "models" / "vae" / "w.txt").write_text("w")
    before = _tree(mine)
    assert main(["reproduce", "-o", str(mine), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "holds no microvae study" in err and "its settings file is not one microvae wrote" in err
    assert _tree(mine) == before


def test_reproduce_never_replaces_its_input(tmp_path, capsys):
    from microvae.io import save

    (tmp_path / "rin").mkdir()
    save(tmp_path / "rin" / "authentic.npz", (np.random.default_rng(0).random((40, 64, 64)) < 0.4).astype(np.uint8))
    before = _tree(tmp_path / "rin")
    assert main(["reproduce", str(tmp_path / "rin" / "authentic.npz"), "-o", str(tmp_path / "rin"),
                 "--overwrite"]) == 2
    assert "is one of the files the study writes" in capsys.readouterr().err
    assert _tree(tmp_path / "rin") == before


def test_reproduce_resume_needs_a_study_to_resume(tmp_path, capsys):
    assert main(["reproduce", "-o", str(tmp_path / "nothere"), "--resume"]) == 2
    assert "cannot resume: " in capsys.readouterr().err and not (tmp_path / "nothere").exists()


def test_a_study_refused_by_a_late_check_leaves_no_folder(tmp_path, capsys):
    """The VAE's size check (the quick preset's six stages need sides divisible by 64) runs
    before the study folder is made; it once ran after the labels were written."""
    assert main(["reproduce", "-o", str(tmp_path / "st"), "--size", "48", "--generators", "vae"]) == 2
    err = capsys.readouterr().err
    assert "--size 48 must be divisible by 2**6 = 64" in err and not (tmp_path / "st").exists()


def test_a_second_study_into_the_same_folder_is_refused(tmp_path, capsys):
    study = tmp_path / "study"
    folders.claim(study, "study", names=(), legacy=_legacy, what="study")
    (study / "config.json").write_text(json.dumps({"digest": "d", "keys": {"authentic": "a"}}))
    before = _tree(study)
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(study, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        assert main(["reproduce", "-o", str(study), "--overwrite"]) == 2
        assert "another microvae process" in capsys.readouterr().err
        assert _tree(study) == before
    finally:
        release.set()
        holder.join(60)


def test_make_demo_starts_a_first_run_and_resumes_a_rerun(tmp_path):
    """The README's main command: `make demo` on a fresh clone starts the study (``--resume``
    refuses a folder that holds no study), and a rerun resumes it."""
    import shutil
    import subprocess

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    # -o install: print the demo recipe alone, without (re)installing anything.
    recipe = subprocess.run([make, "-s", "-n", "-o", "install", "-C", str(root), "demo"], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert recipe.count("\n") == 0 and "microvae reproduce" in recipe, recipe
    command = "echo" + recipe[recipe.index(" reproduce"):]

    def run():
        return subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True,
                              check=True).stdout.split()

    assert "--resume" not in run()
    (tmp_path / "demo_out" / "study_quick").mkdir(parents=True)
    (tmp_path / "demo_out" / "study_quick" / "config.json").write_text("{}")
    assert "--resume" in run()
