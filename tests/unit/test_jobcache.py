"""salaudit.jobcache: a finished job's outputs restored when (and only when) its code, arguments
and input bytes are the same, and every kept file still has its bytes."""

import json
import os
import shutil

import pytest

from salaudit import jobcache
from salaudit.jobcache import JobCache

SCRIPT = jobcache.__file__  # any file of the package stands for the script


@pytest.fixture
def job(tmp_path):
    """A finished job: one input, two outputs in its folder, stored."""
    (tmp_path / "in.npy").write_bytes(b"input bytes")
    out = tmp_path / "results" / "fold0"
    out.mkdir(parents=True)

    def make(arguments=None, name="train"):
        return JobCache(SCRIPT, arguments or {"fold": 0}, [tmp_path / "in.npy"], [out], name)

    outputs = [out / "model.pt", out / "sub" / "metrics.json"]
    outputs[1].parent.mkdir()
    for path, text in zip(outputs, (b"weights", b"{}")):
        path.write_bytes(text)
    make().store(outputs)
    return make, outputs, tmp_path


def test_deleted_outputs_are_restored_with_their_bytes(job):
    make, outputs, _ = job
    for path in outputs:
        path.unlink()  # what Snakemake does before it reruns a job
    messages = []
    assert make().restore(log=messages.append)
    assert [p.read_bytes() for p in outputs] == [b"weights", b"{}"]
    assert "restored 2 output file(s)" in messages[0]


def test_a_changed_argument_or_input_or_job_name_recomputes(job):
    make, outputs, root = job
    assert not make({"fold": 1}).restore(log=lambda _: None)
    assert not make(name="other").restore(log=lambda _: None)  # another job in the same folder
    (root / "in.npy").write_bytes(b"other bytes")
    messages = []
    assert not make().restore(log=messages.append)
    assert "changed since its outputs were cached" in messages[0]


def test_arguments_that_say_how_a_job_runs_keep_the_cache(job):
    make, outputs, root = job
    assert make({"fold": 0, "threads": 8, "checkpoint_seconds": 5}).restore(log=lambda _: None)


def test_an_input_rewritten_with_the_same_bytes_keeps_the_cache(job):
    make, _, root = job
    data = (root / "in.npy").read_bytes()
    (root / "in.npy").unlink()
    (root / "in.npy").write_bytes(data)
    os.utime(root / "in.npy", (1, 1))
    assert make().restore(log=lambda _: None)


def test_a_kept_file_damaged_in_place_is_not_restored(job):
    make, outputs, _ = job
    outputs[0].write_bytes(b"weightz")  # the same inode as the kept link: the cache sees it
    messages = []
    assert not make().restore(log=messages.append)
    assert "model.pt no longer has the bytes it was stored with" in messages[0]


def test_a_moved_tree_keeps_its_cache(job):
    make, outputs, root = job
    moved = root.parent / (root.name + " moved")
    shutil.copytree(root, moved)  # a copy: new paths, new modification times
    new_out = moved / "results" / "fold0"
    (new_out / "model.pt").unlink()
    cache = JobCache(SCRIPT, {"fold": 0}, [moved / "in.npy"], [new_out], "train")
    assert cache.restore(log=lambda _: None)
    assert (new_out / "model.pt").read_bytes() == b"weights"


def test_recompute_variable_and_unreadable_manifest(job, monkeypatch):
    make, _, _ = job
    monkeypatch.setenv("SALAUDIT_RECOMPUTE", "1")
    assert not make().restore(log=lambda _: None)
    monkeypatch.delenv("SALAUDIT_RECOMPUTE")
    make().manifest.write_text("{")
    messages = []
    assert not make().restore(log=messages.append)
    assert "unreadable" in messages[0]


def test_store_replaces_the_entry_and_keeps_no_copy(job):
    make, outputs, _ = job
    cache = make({"fold": 0, "epochs": 2})
    outputs[0].unlink()
    outputs[0].write_bytes(b"new weights")
    cache.store(outputs)
    stored = json.loads(cache.manifest.read_text())
    assert stored["key"] == cache.key and [f["output"] for f in stored["files"]] == ["model.pt", "sub/metrics.json"]
    assert os.stat(outputs[0]).st_ino == os.stat(cache.folder / stored["files"][0]["name"]).st_ino
    assert len(list(cache.folder.parent.iterdir())) == 1  # one entry per job
    assert not make().restore(log=lambda _: None)  # the old key's entry is gone
