"""craft.runs: content hashes, artifacts stored with their identity, locks, the main process,
and the choice of a complete checkpoint to resume from."""

import json

import pytest

from craft.runs import (
    Artifact,
    DamagedFileError,
    RunLockedError,
    StaleArtifactError,
    content_hash,
    is_main_process,
    json_hash,
    last_complete_checkpoint,
    locked,
    on_main_process,
)


def test_content_hash_follows_content_not_names_of_bookkeeping(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.bin").write_bytes(b"123")
    h = content_hash(tmp_path / "a")
    (tmp_path / "a" / "identity.json").write_text("{}")          # bookkeeping is left out
    (tmp_path / "a" / ".lock").write_text("pid")
    assert content_hash(tmp_path / "a") == h
    (tmp_path / "a" / "w.bin").write_bytes(b"124")
    assert content_hash(tmp_path / "a") != h
    assert content_hash(tmp_path / "a" / "w.bin") == content_hash(tmp_path / "a" / "w.bin")
    with pytest.raises(FileNotFoundError, match="cannot hash"):
        content_hash(tmp_path / "missing")
    assert json_hash({"a": 1, "b": [2]}) == json_hash({"b": [2], "a": 1})


def test_artifact_lifecycle(tmp_path):
    art = Artifact(tmp_path / "x", {"lr": 0.1, "base": "abc"})
    assert art.claim() is False and (tmp_path / "x" / "identity.json").is_file() and not art.done
    art.finish()
    assert art.done and Artifact(tmp_path / "x", {"base": "abc", "lr": 0.1}).claim() is True


def test_a_trained_artifact_of_other_settings_is_refused_with_the_changed_keys(tmp_path):
    made = Artifact(tmp_path / "x", {"r2l": {"lr": 0.1, "steps": 40}, "base": "abc"})
    made.claim()
    (tmp_path / "x" / "weights").write_text("trained")
    made.finish()
    with pytest.raises(StaleArtifactError) as e:
        Artifact(tmp_path / "x", {"r2l": {"lr": 0.2, "steps": 40}, "base": "abd"}, what="R2L run").claim()
    assert "r2l.lr: 0.1 -> 0.2" in str(e.value) and "base: abc -> abd" in str(e.value)
    assert "Delete that folder" in str(e.value) and (tmp_path / "x" / "weights").read_text() == "trained"


def test_an_unfinished_run_of_other_settings_never_blocks_the_corrected_one(tmp_path):
    """A run that crashed under a bad setting is moved aside, not refused and not deleted."""
    Artifact(tmp_path / "x", {"r2l": {"loss": "bogus"}}).claim()
    (tmp_path / "x" / "checkpoint-1").mkdir()
    fixed = Artifact(tmp_path / "x", {"r2l": {"loss": "dapo"}})
    assert fixed.claim() is False
    assert json.loads((tmp_path / "x" / "identity.json").read_text()) == {"r2l": {"loss": "dapo"}}
    (aside,) = tmp_path.glob("x.unfinished-*")
    assert (aside / "checkpoint-1").is_dir()
    assert json.loads((aside / "identity.json").read_text())["r2l"]["loss"] == "bogus"


def test_ignored_keys_are_kept_but_refuse_nothing(tmp_path):
    """An output-only run does not read w_cons: a change of it reuses the run; a change of w_txt refuses it."""
    made = Artifact(tmp_path / "o", {"r2l": {"w_txt": 0.4, "w_cons": 0.2}}, ignore=("r2l.w_cons",))
    made.claim()
    made.finish()
    assert Artifact(tmp_path / "o", {"r2l": {"w_txt": 0.4, "w_cons": 0.1}}, ignore=("r2l.w_cons",)).claim() is True
    assert json.loads((tmp_path / "o" / "identity.json").read_text())["r2l"]["w_cons"] == 0.2
    with pytest.raises(StaleArtifactError, match=r"r2l\.w_txt: 0\.4 -> 0\.3"):
        Artifact(tmp_path / "o", {"r2l": {"w_txt": 0.3, "w_cons": 0.2}}, ignore=("r2l.w_cons",)).claim()


def test_a_truncated_identity_names_its_file(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "identity.json").write_text('{"r2l": {"lr"')
    with pytest.raises(DamagedFileError, match=r"t/identity\.json is damaged"):
        Artifact(tmp_path / "t", {"r2l": {"lr": 1}}).claim()


def test_a_cache_of_other_settings_is_recomputed(tmp_path):
    a = Artifact(tmp_path / "c", {"t": 0.6}, recompute=True)
    a.claim()
    (tmp_path / "c" / "completions.json").write_text("[]")
    a.finish()
    b = Artifact(tmp_path / "c", {"t": 1.5}, recompute=True)
    assert b.claim() is False and not (tmp_path / "c" / "completions.json").exists()
    assert json.loads((tmp_path / "c" / "identity.json").read_text()) == {"t": 1.5}


def test_a_folder_without_identity_is_refused(tmp_path):
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "model.bin").write_text("someone else's")
    with pytest.raises(StaleArtifactError, match="no identity.json"):
        Artifact(tmp_path / "y", {"a": 1}).claim()


def test_require_names_what_to_run(tmp_path):
    art = Artifact(tmp_path / "p", {"a": 1}, recompute=True)
    with pytest.raises(FileNotFoundError, match="unfinished: run the probe stage first"):
        art.require("the probe stage")
    art.claim()
    art.finish()
    art.require("unused")
    with pytest.raises(StaleArtifactError, match=r"a: 1 -> 2\n.*delete that folder and run notebook 01"):
        Artifact(tmp_path / "p", {"a": 2}).require("notebook 01")


def test_only_the_main_process_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    art = Artifact(tmp_path / "z", {"a": 1})
    assert art.claim() is False and not (tmp_path / "z").exists()
    art.finish()
    assert not (tmp_path / "z").exists()
    with locked(tmp_path / "z"):       # other ranks follow their main process: no lock, no folder
        pass
    assert not (tmp_path / "z").exists()


def test_a_crashed_writes_temporary_file_does_not_make_a_folder_foreign(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / ".lock").write_text("")
    (folder / ".identity.json.4242.1.tmp").write_text('{"a": ')      # what a main process is writing, or left
    assert Artifact(folder, {"a": 1}).claim() is False
    assert json.loads((folder / "identity.json").read_text()) == {"a": 1}


def _rank(rank: int, port: int, out: str, fail: bool) -> None:
    """One rank of a two-process gloo launch (the environment torchrun gives its processes)."""
    import os

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    decided = []

    def decide():
        decided.append(rank)
        if fail:
            raise StaleArtifactError(f"refused by rank {rank}")
        return f"rank {rank}'s answer"

    try:
        result = on_main_process(decide)
    except StaleArtifactError as e:
        result = f"raised: {e}"
    with open(f"{out}/{rank}.json", "w") as f:
        json.dump({"result": result, "decided": decided}, f)
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()        # as the CLI ends a launch: a clean exit for both


@pytest.mark.parametrize("fail", [False, True])
def test_in_a_distributed_launch_every_rank_follows_the_main_process(tmp_path, fail):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_rank, args=(port, str(tmp_path), fail), nprocs=2, start_method="spawn")
    got = [json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1)]
    expected = "raised: refused by rank 0" if fail else "rank 0's answer"
    assert [g["result"] for g in got] == [expected, expected]
    assert [g["decided"] for g in got] == [[0], []]          # rank 1 never looked for itself


def test_a_locked_folder_refuses_a_second_holder(tmp_path):
    with locked(tmp_path / "run"):
        with pytest.raises(RunLockedError, match=r"another process \(pid \d+"):
            with locked(tmp_path / "run"):
                pass
    with locked(tmp_path / "run"):      # released when the holder is done
        pass


def test_a_shared_cache_waits_for_the_holder_instead_of_refusing(tmp_path):
    import threading

    order = []

    def second():
        with locked(tmp_path / "cache", wait=True):
            order.append("second")

    with locked(tmp_path / "cache"):
        t = threading.Thread(target=second)
        t.start()
        t.join(0.3)
        assert t.is_alive() and order == []     # blocked while the first holder works
        order.append("first done")
    t.join(5)
    assert order == ["first done", "second"]


def _checkpoint(folder, step, complete=True):
    d = folder / f"checkpoint-{step}"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"w")
    if complete:
        (d / "trainer_state.json").write_text("{}")
    return d


def test_the_last_complete_checkpoint_is_resumed_from(tmp_path):
    assert last_complete_checkpoint(tmp_path / "none") is None
    _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 10)
    _checkpoint(tmp_path, 12, complete=False)         # a kill while writing it
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    (tmp_path / "checkpoint-10" / "trainer_state.json").unlink()
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
