"""Run identity: every artifact is stored with what made it, and is never reused silently.

A stage's output folder (trained heads, an R2L run, cached completions, a baseline policy) is an
:class:`Artifact`. It holds ``identity.json``: the settings that made it and the content hashes of
what it was made from (the base policy's weights, the data, upstream artifacts). When a stage runs
again:

- same identity, finished: the artifact is loaded, not recomputed;
- same identity, unfinished (a crash, a kill): the stage resumes into it (R2L from its last
  *complete* checkpoint, see :func:`last_complete_checkpoint`);
- another identity: a *cache* (``recompute=True``: completions, judged records) is emptied and made
  again; a *trained* artifact is refused with :class:`StaleArtifactError`, which lists every changed
  key (old → new) and says what to do — nothing is deleted behind the user's back.

Only the main process of a distributed run writes (:func:`is_main_process`), and a folder is locked
while a process works in it (:func:`locked`): a second process gets :class:`RunLockedError` at once
instead of mixing its files into the first one's. The lock is an OS file lock, released when its
process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from craft.config import diff
from craft.io import DamagedFileError, atomic_write, load_json

__all__ = ["Artifact", "DamagedFileError", "RunLockedError", "StaleArtifactError", "content_hash", "is_main_process",
           "json_hash",
           "last_complete_checkpoint", "locked", "model_fingerprint", "on_main_process", "train"]

IDENTITY, DONE, LOCK = "identity.json", "DONE", ".lock"
# A copied artifact of a forked run (craft.stages.fork): loaded while its identity holds, made again when not.
INHERITED = "INHERITED"
log = logging.getLogger(__name__)
T = TypeVar("T")
_HASH_MEMO: dict[tuple, str] = {}


class StaleArtifactError(RuntimeError):
    """An artifact folder holds the result of other settings or other inputs."""


class RunLockedError(RuntimeError):
    """Another process is working in this folder."""




# ----------------------------------------------------------------------------- hashing

def json_hash(obj) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys), hex."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _file_hash(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_MEMO:     # a file rewritten in place changes its mtime, so the memo is safe
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASH_MEMO[key] = h.hexdigest()
    return _HASH_MEMO[key]


def content_hash(path: str | Path, ignore: tuple[str, ...] = (LOCK, IDENTITY, DONE)) -> str:
    """sha256 over a file's bytes, or over a folder's files (relative paths and contents, sorted);
    bookkeeping files (the lock, identity and done markers) are left out. Large files are read once
    per process (memoised by path, size and modification time)."""
    path = Path(path)
    if path.is_file():
        return _file_hash(path)
    if not path.is_dir():
        raise FileNotFoundError(f"cannot hash {path}: no such file or folder")
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name not in ignore):
        h.update(f.relative_to(path).as_posix().encode() + b"\0" + _file_hash(f).encode())
    return h.hexdigest()


def model_fingerprint(name_or_path: str) -> str:
    """What a policy is, for run identities: the content hash of a local checkpoint folder, or for a
    hub id the commit of its cached snapshot (``hub:<id>@<commit>``; the bare id when not cached yet)."""
    expanded = os.path.expanduser(str(name_or_path))
    if os.path.isdir(expanded):
        return content_hash(expanded)
    try:
        from huggingface_hub import snapshot_download

        snapshot = snapshot_download(str(name_or_path), local_files_only=True)
        return f"hub:{name_or_path}@{Path(snapshot).name}"
    except Exception:       # not in the local cache (or not a hub id): the id is all we know
        return f"hub:{name_or_path}"


# ----------------------------------------------------------------------------- processes and locks

def rank() -> int:
    """This process's global rank (0 outside a distributed launch)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """True on the process that writes files: rank 0, or the only process."""
    return rank() == 0


def on_main_process(decide: Callable[[], T]) -> T:
    """``decide()`` on the main process only, its result (or its error) handed to every rank.

    In a distributed launch (``WORLD_SIZE`` > 1) the other ranks must not decide for themselves what a
    folder holds while the main process is changing it: they would see its half-made state (a folder
    without its identity yet, a temporary file) and decide otherwise. The launch's process group is
    joined here if nothing joined it yet (``accelerate.PartialState``, which the trainer uses later).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return decide()
    import torch.distributed as dist

    if not dist.is_initialized():
        from accelerate import PartialState

        PartialState()
    box: list = [None]
    if dist.get_rank() == 0:
        try:
            box = [(True, decide())]
        except Exception as e:          # every rank raises it, none waits for a main process that has stopped
            box = [(False, e)]
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if not ok:
        raise value
    return value


@contextlib.contextmanager
def locked(folder: str | Path, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if needed) for the block; raise
    :class:`RunLockedError` at once if another process holds it, or with ``wait`` (a cache that
    concurrent processes share: the first computes it, the others then load it) wait for it to be
    released. Non-main ranks do not lock (they follow their main process and write nothing)."""
    folder = Path(folder)
    if not is_main_process():
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    try:     # never through a symbolic link: a planted link would have its target truncated and written
        handle = os.fdopen(os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644), "a+")
    except OSError:
        if (folder / LOCK).is_symlink():
            raise RunLockedError(f"{folder / LOCK} is a symbolic link; a lock file must be a plain file: remove "
                                 "the link and run again") from None
        raise
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunLockedError(f"another process ({holder}) is working in {folder}; wait for it to finish, "
                                 "or use another run_dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        yield
    finally:
        handle.close()      # closing releases the lock


# ----------------------------------------------------------------------------- artifacts

def _temporary(name: str) -> bool:
    """A file :func:`craft.io.atomic_write` has not renamed yet (``.<name>.<pid>.<thread>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


class Artifact:
    """An output folder and the identity that made it (see the module docstring).

    ``identity`` is a JSON-able mapping: settings, and content hashes of the inputs. ``recompute``:
    True for caches (a changed identity empties the folder), False for trained artifacts (a changed
    identity raises :class:`StaleArtifactError`). ``ignore``: dotted keys of the identity that do not
    decide this artifact (an output-only run does not read ``r2l.w_cons``): they are recorded but not
    compared, so changing them refuses nothing.
    """

    def __init__(self, path: str | Path, identity: Mapping, *, recompute: bool = False, what: str = "artifact",
                 ignore: tuple[str, ...] = ()):
        self.path, self.identity, self.recompute, self.what = Path(path), dict(identity), recompute, what
        self.ignore = tuple(ignore)

    @property
    def done(self) -> bool:
        """Finished, with exactly this identity."""
        return (self.path / DONE).is_file() and self._stored() == self._canonical()

    def _full(self) -> dict:
        return json.loads(json.dumps(self.identity, sort_keys=True, default=str))

    def _drop_ignored(self, identity: dict) -> dict:
        for dotted in self.ignore:
            *parents, key = dotted.split(".")
            node = identity
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(key, None)
        return identity

    def _canonical(self) -> dict:
        return self._drop_ignored(self._full())

    def _stored(self) -> dict | None:
        f = self.path / IDENTITY
        if not f.is_file():
            return None
        return self._drop_ignored(load_json(f, "delete that folder, and its stage makes it again"))

    def changes(self) -> list[str]:
        """``key: old -> new`` for every difference between the stored identity and this one."""
        stored = self._stored()
        if stored is None:
            return []
        return [f"{k}: {_short(a)} -> {_short(b)}" for k, a, b in diff(stored, self._canonical())]

    def claim(self) -> bool:
        """Make the folder this artifact's; True if it is already finished (load, do not redo).

        A folder of another identity is emptied (``recompute``) or refused; an unfinished one (a run
        that crashed or was stopped under other settings) is moved aside to ``<folder>.unfinished-<time>``
        so that it never blocks the corrected run and nothing is lost; a folder with files but no
        identity (not made by this package, or by an older version) is refused. A folder a fork copied
        (it holds :data:`INHERITED`; :func:`craft.stages.fork.fork_run`) is a copy, so it is emptied
        and made again, like a cache: its original stays in the run it was copied from.

        In a distributed launch the main process decides and the other ranks follow it
        (:func:`on_main_process`).
        """
        return on_main_process(self._claim)

    def _claim(self) -> bool:
        stored = self._stored()
        foreign = stored is None and self.path.is_dir() and any(      # a crashed write's temporary file is not
            p.name != LOCK and not _temporary(p.name) for p in self.path.iterdir())      # another's output
        inherited = (self.path / INHERITED).is_file()
        if stored is not None and stored != self._canonical() or foreign:
            why = "\n  ".join(self.changes()) if stored is not None else "it has no identity.json"
            if not (self.recompute or inherited) and (foreign or (self.path / DONE).is_file()):
                raise StaleArtifactError(
                    f"{self.path} holds a {self.what} made from other settings or inputs:\n  {why}\n"
                    f"Nothing was changed. Delete that folder to make it again with the new settings, or "
                    f"choose another run_dir to keep both.")
            if is_main_process():
                self._clear(keep=not (self.recompute or inherited), why=why)
        elif self.done:
            return True
        if is_main_process():
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path / IDENTITY, json.dumps(self._full(), indent=2, sort_keys=True) + "\n")
        return False

    def _clear(self, keep: bool, why: str) -> None:
        """Empty the folder (its lock stays); with ``keep``, into a sibling folder instead of deleting."""
        aside = self.path.with_name(f"{self.path.name}.unfinished-{time.strftime('%Y%m%d-%H%M%S')}")
        if keep:
            log.warning("%s holds an unfinished %s of other settings (%s); moved to %s", self.path, self.what,
                        why.replace("\n  ", "; "), aside)
            aside.mkdir(parents=True, exist_ok=True)
        for p in self.path.iterdir():
            if p.name == LOCK:
                continue
            if keep:
                shutil.move(str(p), aside / p.name)
            else:
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    def finish(self) -> None:
        """Mark the artifact finished (main process only)."""
        if is_main_process():
            atomic_write(self.path / DONE, time.strftime("%Y-%m-%d %H:%M:%S") + "\n")

    def require(self, maker: str) -> None:
        """Raise unless the artifact is finished with this identity: :class:`StaleArtifactError` (see
        :meth:`finished`), or ``FileNotFoundError`` when it is missing or unfinished, saying to run
        ``maker`` (what makes it, e.g. "notebook 02 (or `craft lclr --config <params file>`)") first."""
        if not self.finished(maker):
            raise FileNotFoundError(f"{self.path} is missing or unfinished: run {maker} first")

    def finished(self, maker: str) -> bool:
        """True when the artifact is finished with this identity, False when it is not finished (or not
        there); :class:`StaleArtifactError` when it was finished with another identity, listing every
        changed key (old -> new) and how to remake it with ``maker``. What a stage calls before it
        trusts an upstream artifact."""
        if (self.path / DONE).is_file() and self._stored() != self._canonical():
            remake = f"run {maker} again" if self.recompute else f"delete that folder and run {maker}"
            raise StaleArtifactError(f"{self.path} holds a {self.what} made from other settings or inputs:\n  "
                                     + "\n  ".join(self.changes()) + f"\nNothing was changed. To remake it with the "
                                     f"current params, {remake}; or set the params back.")
        return self.done


def _short(v) -> str:
    text = json.dumps(v, sort_keys=True, default=str) if not isinstance(v, str) else v
    return text if len(text) <= 80 else text[:77] + "..."


# ----------------------------------------------------------------------------- checkpoints

_CKPT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "pytorch_model.bin")


def checkpoint_complete(path: Path) -> bool:
    """A checkpoint folder a resume can use: it has weights and ``trainer_state.json``, which
    transformers' Trainer writes last (after the weights, optimizer, scheduler and RNG states, or
    DeepSpeed's own files), so a kill while writing leaves it out."""
    return (path / "trainer_state.json").is_file() and (
        any((path / w).is_file() for w in _WEIGHTS) or (path / "latest").is_file())


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The highest-step complete ``checkpoint-N`` in ``output_dir`` (partial ones, left by a kill while
    writing, are skipped), or None."""
    d = Path(output_dir)
    if not d.is_dir():
        return None
    steps = sorted(((int(m.group(1)), p) for p in d.iterdir() if p.is_dir() and (m := _CKPT.match(p.name))),
                   reverse=True)
    return next((str(p) for _, p in steps if checkpoint_complete(p)), None)


def train(trainer, resume: bool = True):
    """``trainer.train()``, from the last complete ``checkpoint-*`` in ``args.output_dir`` when
    ``resume`` and one exists, else from scratch (:func:`last_complete_checkpoint`: a checkpoint
    half-written when a run was killed is skipped, not resumed into). Any transformers ``Trainer``
    works (R2L's GRPO and the baselines' SFT and DPO). Returns its ``TrainOutput``."""
    last = last_complete_checkpoint(trainer.args.output_dir) if resume else None
    with warnings.catch_warnings(), _disk_errors_named(trainer.args.output_dir):
        # TRL 1.16 still calls this deprecated name when it saves a checkpoint
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return trainer.train(resume_from_checkpoint=last)


# what torch's zip writer says when a checkpoint cannot be written out (a full disk, among others)
_TORCH_WRITE_FAILURES = ("unexpected pos", "PytorchStreamWriter failed", "inline_container")


@contextlib.contextmanager
def _disk_errors_named(folder: str | Path, need_bytes: int = 64 << 20) -> Iterator[None]:
    """A checkpoint write that fails on a (nearly) full disk raises torch's ``unexpected pos ...``; say
    what it is: ``OSError(ENOSPC)`` naming the folder. Other errors pass through unchanged."""
    try:
        yield
    except RuntimeError as e:
        if not any(s in str(e) for s in _TORCH_WRITE_FAILURES):
            raise
        free = shutil.disk_usage(Path(folder) if Path(folder).exists() else Path(folder).parent).free
        if free >= need_bytes:
            raise
        raise OSError(errno.ENOSPC, f"no space left on device ({free >> 20} MiB free) while writing a checkpoint",
                      str(folder)) from e
