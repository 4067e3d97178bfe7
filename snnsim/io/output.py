"""The one output writer: every command's files reach the user through here.

Rules (DESIGN.md "Conventions"), in the order a run meets them:

1. **Check before work.** ``--out`` must be new, or an earlier snnsim output that still holds
   only what that run wrote (its marker lists the files). Anything else -- an empty string,
   the current folder or one above it, the root, an input of the run, a symbolic link, a
   foreign file or folder (empty ones too), a folder of another user or one made read-only
   -- is refused with one line naming the path and the fix. Nothing is ever deleted that
   snnsim did not create: the only things removed are our own staging folders and our own
   earlier outputs, each recognised by its marker.
2. **Lock.** A lock file beside the output (``.NAME.snnsim-lock``, ``flock``) makes a second
   run on the same ``--out`` fail at once with one line naming the running one (pid, command,
   start time). The kernel drops the lock when a process dies, even by SIGKILL.
3. **Sweep.** Under the lock, staging left by a run that was killed (SIGKILL, power loss) is
   removed; an earlier output caught half-way through a replace is restored.
4. **Stage.** Files are written into a sibling folder ``.NAME.snnsim-staging-RUNID`` that
   says, in its own marker, that it is incomplete.
5. **Publish.** A marker (``.snnsim-output``: tool, run id, command line, pid, host, times and
   the list of files) is written last, then the staging folder takes the output's place in
   one atomic rename (``renameat2`` EXCHANGE / NOREPLACE where the kernel has it, so the
   output is never missing and never replaces something created meanwhile).

SIGINT already unwinds as KeyboardInterrupt; :func:`install_signal_handlers` makes SIGTERM
and SIGHUP unwind the same way (as :class:`Terminated`), so staging is removed and the lock
released -- also when the signal lands inside a finalizer, where Python would drop it.
Outputs get ordinary permissions (the process umask), never mkdtemp's 0700.

A single-file output (``snnsim measure``'s profile YAML) follows the same rules; its marker
is its first line, a comment ``# snnsim-output {...}``.
"""
from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import errno
import fcntl
import json
import os
import pathlib
import shutil
import signal
import socket
import stat
import sys
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Iterable

__all__ = ["MARKER", "OutputBusyError", "OutputError", "OutputFile", "OutputFolder", "ResumableFolder", "Terminated",
           "check_output", "install_signal_handlers", "open_output", "open_output_file", "open_resumable",
           "writing_into"]

MARKER = ".snnsim-output"            # in every output folder snnsim published
STAGING_MARKER = ".snnsim-staging"   # in every staging folder: incomplete by definition
FILE_HEADER = "# snnsim-output "     # first line of a single-file output
TMP_PREFIX = ".snnsim-tmp-"          # a file being written inside a resumable folder (ours by its name)
_MAX_MARKER_BYTES = 1 << 20          # a marker is a few KiB; a bigger "marker" is not ours
_SHOWN_FOREIGN = 3                   # foreign names quoted in a refusal


class OutputError(ValueError):
    """``--out`` cannot be used: one line naming the path and the fix (exit code 2)."""


class OutputBusyError(OutputError):
    """Another snnsim run is writing the same ``--out`` now."""


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM / SIGHUP so every ``with`` block unwinds (staging
    removed, lock released). A BaseException, like KeyboardInterrupt: no ``except Exception``
    may swallow it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return signal.Signals(self.signum).name


_AGAIN_AFTER_S = 0.05   # long enough for the hook that schedules it to have returned


class _SendAgain:
    """One signal to send to this process once more, shortly, from a timer thread -- or at
    once by :meth:`now`, whichever comes first (never both)."""

    def __init__(self, signum: int):
        self.signum = signum
        self._lock = threading.Lock()
        self._sent = False
        self._timer = threading.Timer(_AGAIN_AFTER_S, self._send)
        self._timer.daemon = True
        try:
            self._timer.start()
        except RuntimeError:   # interpreter shutting down: nothing left to unwind
            self._sent = True

    def _send(self) -> None:
        with self._lock:
            if self._sent:
                return
            self._sent = True
        os.kill(os.getpid(), self.signum)

    def now(self) -> None:
        """Send it now if the timer has not (the handlers are being put back: the signal goes to
        the caller's handler before the command returns, not 50 ms after)."""
        self._timer.cancel()
        self._send()


def install_signal_handlers():
    """SIGTERM and SIGHUP raise :class:`Terminated`, SIGINT KeyboardInterrupt (main thread
    only; elsewhere a no-op). Returns a function that puts the previous handlers back: a
    command run in-process (a notebook, a test runner) must not leave the host's signals
    changed after it returns.

    Python runs a signal handler at the next bytecode boundary, which may be inside a weakref
    callback, a ``__del__`` or a generator closed by the garbage collector (the profiler's
    tensor tags free themselves that way, many times a frame). An exception raised there is
    printed as "Exception ignored" and dropped, and the run would go on to its end as if the
    signal had never come. So while the handlers are installed, a dropped one is caught in
    ``sys.unraisablehook`` and the signal sent again a moment later; should it land in that
    hook, the handler does not raise there but has it sent again once more. One still to be
    sent when the handlers are put back is sent then, to the caller's handler."""
    in_hook = False
    again: int | None = None     # a signal whose exception was dropped: to be sent once more
    pending: list[_SendAgain] = []

    def raise_for(signum: int, exc: BaseException) -> None:
        nonlocal again
        if in_hook:              # raised inside the hook it would be dropped as well
            again = signum
            return
        raise exc

    def handler(signum, frame):
        raise_for(signum, Terminated(signum))

    def interrupt(signum, frame):
        raise_for(signum, KeyboardInterrupt())

    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, handler)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:   # never one the caller set
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
    except ValueError:   # not the main thread: the caller owns signals
        pass

    previous_hook = sys.unraisablehook

    def unraisable(args) -> None:
        nonlocal in_hook, again
        in_hook = True
        try:
            exc = args.exc_value
            if isinstance(exc, Terminated):
                again = exc.signum
            elif isinstance(exc, KeyboardInterrupt) and signal.SIGINT in previous:
                again = signal.SIGINT
            else:
                previous_hook(args)
        finally:
            if again is not None:
                pending.append(_SendAgain(again))
                again = None
            in_hook = False

    if previous:
        sys.unraisablehook = unraisable

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        if sys.unraisablehook is unraisable:
            sys.unraisablehook = previous_hook
        for resend in pending:   # a signal still to be sent again goes to the caller's handler, now
            resend.now()

    return restore


# ------------------------------------------------------------------ identity
@dataclass(frozen=True)
class RunIdentity:
    run_id: str
    command: str
    argv: list[str]
    pid: int
    host: str
    started: str
    snnsim: str = field(default="unknown")

    @classmethod
    def new(cls, command: str, argv: Iterable[str] | None = None) -> "RunIdentity":
        try:
            from importlib.metadata import version

            ver = version("snnsim")
        except Exception:   # running from a source tree without metadata
            ver = "unknown"
        return cls(run_id=uuid.uuid4().hex, command=command, argv=list(sys.argv if argv is None else argv),
                   pid=os.getpid(), host=socket.gethostname(),
                   started=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), snnsim=ver)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, {self.command}, started {self.started}"


# ------------------------------------------------------------------ checks
def _shown(out) -> str:
    return repr(os.fspath(out)) if not os.fspath(out).strip() else os.fspath(out)


def _real(path) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def _inside(child: str, parent: str) -> bool:
    """child == parent or child lies below parent (both real, absolute)."""
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


def _read_marker(folder: pathlib.Path) -> dict | None:
    """The marker of an snnsim output folder, or None when there is none (or it is not ours)."""
    path = folder / MARKER
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_MARKER_BYTES:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != "snnsim" or not isinstance(data.get("files"), list):
        return None
    return data


def _entries(folder: pathlib.Path) -> list[str]:
    """Every path below folder (files and folders), relative, '/'-separated; links not followed."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel = os.path.relpath(root, folder)
        for name in dirs + files:
            found.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
    return sorted(found)


def _foreign_entries(folder: pathlib.Path, marker: dict) -> list[str]:
    """Entries the marker does not account for. A resumable folder (a dataset run) also owns
    what lies in its `managed` sub-folders (one file per finished sequence, written there whole)
    and the temporary files of a write that was cut short (TMP_PREFIX): a rerun sweeps those."""
    dirs = [d.strip("/") for d in marker.get("managed", []) if isinstance(d, str) and d.strip("/")]
    listed = set(marker["files"]) | {MARKER} | set(dirs)
    managed = tuple(f"{d}/" for d in dirs)
    return [e for e in _entries(folder)
            if e not in listed and not (managed and e.startswith(managed))
            and not (marker.get("resumable") is not None and e.rsplit("/", 1)[-1].startswith(TMP_PREFIX))]


def _quote(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:_SHOWN_FOREIGN])
    return shown + (f" and {len(names) - _SHOWN_FOREIGN} more" if len(names) > _SHOWN_FOREIGN else "")


def _check_ours_writable(out: pathlib.Path, shown: str, st: os.stat_result) -> None:
    """An earlier output of ours may be replaced only by its owner and while not protected."""
    if st.st_uid != os.geteuid():
        raise OutputError(f"--out {shown} belongs to another user (uid {st.st_uid}); snnsim replaces only your own "
                          f"outputs: give another --out")
    if not st.st_mode & stat.S_IWUSR:
        raise OutputError(f"--out {shown} is read-only (mode {stat.filemode(st.st_mode)}); snnsim does not replace a "
                          f"folder you protected: make it writable (chmod u+w) or give another --out")


def _file_marker(path: pathlib.Path) -> dict | None:
    try:
        with open(path, "rb") as fh:
            first = fh.readline(_MAX_MARKER_BYTES)
    except OSError:
        return None
    text = first.decode("utf-8", "replace")
    if not text.startswith(FILE_HEADER):
        return None
    try:
        data = json.loads(text[len(FILE_HEADER):])
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("tool") == "snnsim" else None


def check_output(out, *, kind: str = "folder", inputs: Iterable = (), resumable: bool = False) -> pathlib.Path:
    """Refuse (OutputError, one line) an ``--out`` snnsim may not write; return it as a Path.
    ``kind`` is 'folder' or 'file'; ``inputs`` are the run's input paths (sequence, weights,
    profiles: anything that is not an existing path is ignored), which ``--out`` may neither
    be nor contain. A resumable folder (a dataset run's) is only ever continued by a resumable
    writer (``resumable=True``), never replaced by another command's output."""
    if out is None or not os.fspath(out).strip():
        raise OutputError(f"--out {_shown(out or '')} is empty; give the name of a {kind} to create, e.g. "
                          f"--out {'out/run1' if kind == 'folder' else 'out/profile.yaml'}")
    shown = os.fspath(out)
    path = pathlib.Path(shown).expanduser()
    real = _real(path)
    if real == os.sep:
        raise OutputError(f"--out {shown} is the root folder; give the name of a new {kind}")
    if kind == "folder" and _inside(_real(os.getcwd()), real):
        what = "the current folder" if _real(os.getcwd()) == real else "a folder above the current one"
        raise OutputError(f"--out {shown} is {what}; give the name of a new folder, e.g. --out out/run1")
    for item in inputs:
        if item is None or not isinstance(item, (str, os.PathLike)) or not os.fspath(item).strip():
            continue
        if os.path.lexists(os.path.expanduser(os.fspath(item))):
            if _inside(_real(os.path.expanduser(os.fspath(item))), real):
                raise OutputError(f"--out {shown} would replace the input {os.fspath(item)}; give an --out outside "
                                  f"the run's inputs")
    if os.path.islink(path):
        raise OutputError(f"--out {shown} is a symbolic link; snnsim does not write through links: give the name "
                          f"of a new {kind}")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputError(f"--out {shown}: a part of the path is a file, not a folder; give a path whose parents "
                          f"are folders") from None
    except OSError as err:
        raise OutputError(f"--out {shown} cannot be inspected ({err.strerror}); give another --out") from None
    if st is not None:
        if kind == "folder":
            if not stat.S_ISDIR(st.st_mode):
                raise OutputError(f"--out {shown} is an existing file that snnsim did not write; give the name of a "
                                  f"folder that does not exist yet")
            marker = _read_marker(path)
            if marker is None:
                try:
                    empty = not any(os.scandir(path))
                except OSError as err:
                    raise OutputError(f"--out {shown} cannot be read ({err.strerror}); give another --out") from None
                if empty:
                    raise OutputError(f"--out {shown} is an existing empty folder that snnsim did not create; give "
                                      f"the name of a folder that does not exist yet (or remove it: rmdir {shown})")
                raise OutputError(f"--out {shown} already holds files snnsim did not write; give the name of a "
                                  f"folder that does not exist yet (snnsim replaces only its own outputs)")
            if marker.get("resumable") is not None and not resumable:
                raise OutputError(f"--out {shown} holds a dataset run (resumable: its finished sequences are kept "
                                  f"there); give another --out, or rerun that dataset command to continue it")
            foreign = _foreign_entries(path, marker)
            if foreign:
                raise OutputError(f"--out {shown} is an earlier snnsim output but now also holds {_quote(foreign)}, "
                                  f"which snnsim did not write; move them out or give another --out")
            _check_ours_writable(path, shown, st)
        else:
            if not stat.S_ISREG(st.st_mode):
                raise OutputError(f"--out {shown} exists and is not a regular file; give the name of a new file")
            if _file_marker(path) is None:
                raise OutputError(f"--out {shown} is an existing file that snnsim did not write; give the name of a "
                                  f"file that does not exist yet (snnsim replaces only its own outputs)")
            _check_ours_writable(path, shown, st)
    check_parent_writable(path, f"--out {shown}")
    return path


def check_parent_writable(path, shown: str) -> None:
    """Refuse (OutputError, one line naming ``shown``) a path whose nearest existing parent is
    a file or a folder this user cannot create anything in -- before a long run, not after."""
    probe = pathlib.Path(path).expanduser().absolute().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{shown}: {probe} is a file, not a folder; give a path whose parents are folders")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{shown}: cannot create anything in {probe} (permission denied); give a folder you "
                          f"can write to")


# ------------------------------------------------------------------ atomic renames
_AT_FDCWD, _RENAME_NOREPLACE, _RENAME_EXCHANGE = -100, 1, 2
try:
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    _renameat2.restype = ctypes.c_int
except (AttributeError, OSError):   # not glibc >= 2.28
    _renameat2 = None


def _rename2(src: pathlib.Path, dst: pathlib.Path, flags: int) -> bool:
    """renameat2(src, dst, flags); False when this kernel / file system cannot do it."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


# ------------------------------------------------------------------ the writer
class OutputTarget:
    """What a folder and a file output share: parents, lock, sweep, publish bookkeeping."""

    kind = "folder"
    resumable = False   # a dataset run's folder: continued by its own kind of run only

    def __init__(self, out, command: str, inputs: Iterable = (), argv: Iterable[str] | None = None):
        self.inputs = [i for i in inputs]
        self.path = check_output(out, kind=self.kind, inputs=self.inputs, resumable=self.resumable)
        self.shown = os.fspath(out)
        self.identity = RunIdentity.new(command, argv)
        self.published = False
        self._lock_fd: int | None = None
        self._made: list[pathlib.Path] = []
        self._staging: pathlib.Path | None = None

    # names beside the output
    @property
    def parent(self) -> pathlib.Path:
        return self.path.absolute().parent

    def _sibling(self, tag: str) -> pathlib.Path:
        return self.parent / f".{self.path.name}.snnsim-{tag}"

    @property
    def lock_path(self) -> pathlib.Path:
        return self._sibling("lock")

    # context
    def __enter__(self):
        self._make_parents()
        try:
            self._lock()
            self._sweep()
            check_output(self.path, kind=self.kind, inputs=self.inputs)   # again, now that we hold the lock
            self._staging = self._new_staging()
        except BaseException:
            self._close(publish=False)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._close(publish=exc_type is None)
        return False

    def _close(self, publish: bool) -> None:
        try:
            if publish and not self.published:
                self.publish()
        finally:
            self._discard_staging()
            self._release()
            if not self.published:
                self._remove_made_parents()

    # parents
    def _make_parents(self) -> None:
        missing = []
        p = self.parent
        while not p.exists():
            missing.append(p)
            p = p.parent
        for p in reversed(missing):
            try:
                p.mkdir()
            except FileExistsError:
                continue
            except OSError as err:
                raise OutputError(f"--out {self.shown}: cannot create {p} ({err.strerror}); give another --out") \
                    from None
            self._made.append(p)

    def _remove_made_parents(self) -> None:
        for p in reversed(self._made):
            try:
                p.rmdir()   # only while empty: never anything else's
            except OSError:
                break
        self._made = []

    # lock
    def _check_lock_file(self) -> None:
        """An existing lock path must be a lock of ours (left by a killed run): a regular file
        of this user holding our JSON, or empty (killed before it wrote). Anything else -- a
        link, a folder, a user's file that happens to have the name -- is never opened."""
        try:
            st = os.lstat(self.lock_path)
        except FileNotFoundError:
            return
        ours = stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_size <= _MAX_MARKER_BYTES
        if ours and st.st_size:
            try:
                ours = json.loads(self.lock_path.read_text(encoding="utf-8")).get("tool") == "snnsim"
            except (OSError, ValueError, AttributeError):
                ours = False
        if not ours:
            raise OutputError(f"--out {self.shown}: {self.lock_path} exists and is not an snnsim lock; move it away "
                              f"or give another --out")

    def _lock(self) -> None:
        while True:
            self._check_lock_file()
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
            except OSError as err:   # a link put there after the check (ELOOP) or the like
                raise OutputError(f"--out {self.shown}: cannot open the lock {self.lock_path} ({err.strerror}); move "
                                  f"it away or give another --out") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_lock(fd)
                os.close(fd)
                raise OutputBusyError(f"--out {self.shown} is being written by another snnsim run ({holder}); wait "
                                      f"for it to finish or give another --out") from None
            # the file may have been unlinked by its previous holder between open and flock
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"tool": "snnsim", **asdict(self.identity)}).encode())
        self._lock_fd = fd

    def _release(self) -> None:
        if self._lock_fd is None:
            return
        try:
            os.unlink(self.lock_path)   # still ours: we hold it
        except FileNotFoundError:
            pass
        os.close(self._lock_fd)
        self._lock_fd = None

    # staging
    @property
    def staging(self) -> pathlib.Path:
        if self._staging is None:
            raise RuntimeError("the output is not open: use it as a context manager")
        return self._staging

    def _staging_path(self) -> pathlib.Path:
        return self._sibling(f"staging-{self.identity.run_id[:16]}")

    def _discard_staging(self) -> None:
        s, self._staging = self._staging, None
        if s is not None and os.path.lexists(s):
            _remove_ours(s)

    def _stale(self) -> list[pathlib.Path]:
        prefix = f".{self.path.name}.snnsim-"
        try:
            names = [e.name for e in os.scandir(self.parent)]
        except OSError:
            return []
        return sorted(self.parent / n for n in names if n.startswith(prefix) and not n.endswith("-lock"))

    def _sweep(self) -> None:
        """Remove what a killed run of ours left (we hold the lock: no live run owns it)."""
        for p in self._stale():
            tag = p.name[len(f".{self.path.name}.snnsim-"):]
            if tag.startswith("old-") and not os.path.lexists(self.path) and _is_published(p, self.kind):
                os.rename(p, self.path)   # killed half-way through a replace: put the old output back
            elif tag.startswith("old-") and _is_published(p, self.kind):
                _remove_ours(p)
            elif tag.startswith("staging-") and _is_staging(p, self.kind):
                _remove_ours(p)

    def publish(self) -> pathlib.Path:
        raise NotImplementedError

    def _published(self) -> None:
        """The new output is in place: from here a signal must not call it unwritten."""
        self._staging = None
        self.published = True

    def _marker(self, files: list[str]) -> dict:
        return {"tool": "snnsim", "format": 1, **asdict(self.identity),
                "published": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "files": files}

    def _swap_into_place(self, ready: pathlib.Path) -> None:
        """Move the complete `ready` to self.path, replacing an earlier output of ours."""
        if os.path.lexists(self.path):
            check_output(self.path, kind=self.kind, inputs=self.inputs)   # still ours, nothing foreign added
            if _rename2(ready, self.path, _RENAME_EXCHANGE):
                self._published()
                _remove_previous(ready, self.kind)   # now the previous output
                return
            old = self._sibling(f"old-{self.identity.run_id[:16]}")
            os.rename(self.path, old)
            os.rename(ready, self.path)
            self._published()
            _remove_previous(old, self.kind)
            return
        try:
            if not _rename2(ready, self.path, _RENAME_NOREPLACE):
                if self.kind == "file":
                    os.link(ready, self.path)   # fails if anything is there now: never replaces
                    os.unlink(ready)
                else:
                    if os.path.lexists(self.path):
                        raise FileExistsError
                    os.rename(ready, self.path)
            self._published()
        except FileExistsError:
            raise OutputError(f"--out {self.shown} was created by something else while snnsim ran; nothing was "
                              f"replaced: give another --out") from None


def _read_lock(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 65536).decode("utf-8"))
        return f"pid {data['pid']} on {data['host']}, {data['command']}, started {data['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a run that has not yet said who it is"


def _is_published(path: pathlib.Path, kind: str) -> bool:
    """A complete output of ours: its marker parses and it holds only the files it lists (a
    staging marker aside: a run killed between writing the one and removing the other)."""
    if os.path.islink(path):
        return False
    if kind == "file":
        return path.is_file() and _file_marker(path) is not None
    marker = _read_marker(path) if path.is_dir() else None
    return marker is not None and set(_foreign_entries(path, marker)) <= {STAGING_MARKER}


def _is_staging(path: pathlib.Path, kind: str) -> bool:
    """Staging of ours: its staging marker parses as ours (or it is already a complete output
    that was never renamed into place). Anything else with the name is left alone."""
    if os.path.islink(path):
        return False
    if kind == "file" or not path.is_dir():
        return _is_published(path, kind)
    try:
        data = json.loads((path / STAGING_MARKER).read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("tool") == "snnsim" and data.get("incomplete") is True:
            return True
    except (OSError, ValueError):
        pass
    return _is_published(path, kind)


def _remove_previous(path: pathlib.Path, kind: str) -> None:
    """The output a publish replaced. Checked as ours before the swap; a file a user added
    since is never deleted with it: the folder is then left beside the output, as it is."""
    if _is_published(path, kind):
        _remove_ours(path)


def _remove_ours(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


class OutputFolder(OutputTarget):
    """An output folder: write into ``.staging`` inside the ``with`` block; it is published on
    a normal exit (or by :meth:`publish`) and removed on any exception or signal."""

    kind = "folder"

    def _new_staging(self) -> pathlib.Path:
        path = self._staging_path()
        os.mkdir(path, 0o777)   # the umask applies: ordinary permissions, not mkdtemp's 0700
        (path / STAGING_MARKER).write_text(json.dumps({"tool": "snnsim", "incomplete": True,
                                                      **asdict(self.identity)}) + "\n")
        return path

    def publish(self) -> pathlib.Path:
        if self.published:
            return self.path
        staging = self.staging
        files = [e for e in _entries(staging) if e != STAGING_MARKER]
        (staging / MARKER).write_text(json.dumps(self._marker(files), indent=1) + "\n")   # then, never before:
        (staging / STAGING_MARKER).unlink()
        self._swap_into_place(staging)
        return self.path


class OutputFile(OutputTarget):
    """A single output file: :meth:`write_text` stages it, publish moves it into place."""

    kind = "file"

    def _new_staging(self) -> pathlib.Path:
        return self._staging_path()

    def write_text(self, text: str) -> None:
        header = FILE_HEADER + json.dumps({"tool": "snnsim", "run_id": self.identity.run_id,
                                           "command": self.identity.command, "started": self.identity.started})
        with open(self.staging, "w", encoding="utf-8") as fh:
            fh.write(header + "\n" + text)

    def publish(self) -> pathlib.Path:
        if self.published:
            return self.path
        if not self.staging.exists():
            raise RuntimeError("nothing was written: call write_text before publishing")
        self._swap_into_place(self.staging)
        return self.path


def open_output(out, command: str, inputs: Iterable = (), argv: Iterable[str] | None = None) -> OutputFolder:
    """The output folder of a run: checked now (OutputError), locked and staged on ``with``."""
    return OutputFolder(out, command, inputs, argv)


def open_output_file(out, command: str, inputs: Iterable = (), argv: Iterable[str] | None = None) -> OutputFile:
    """A single output file (e.g. a profile YAML), with the folder rules."""
    return OutputFile(out, command, inputs, argv)


class writing_into:
    """``with writing_into(out, command) as folder:`` -- a staging folder to write into: that of
    an already open :class:`OutputFolder` (its owner publishes it), or of a new one for a path
    (published when the block ends). Lets library functions take either."""

    def __init__(self, out, command: str, inputs: Iterable = ()):
        self._given = out if isinstance(out, OutputFolder) else None
        self._own = None if self._given is not None else open_output(out, command, inputs)

    def __enter__(self) -> pathlib.Path:
        if self._given is not None:
            return self._given.staging
        return self._own.__enter__().staging

    def __exit__(self, *exc) -> bool:
        if self._own is not None:
            return self._own.__exit__(*exc)
        return False


# ------------------------------------------------------------------ resumable folders


class ResumableFolder(OutputTarget):
    """An output folder filled piece by piece and kept between runs (a dataset run: each
    finished sequence lands as it completes; a rerun with the same settings continues).

    The same rules as every output: ``--out`` must be new or an earlier output of ours with
    nothing foreign in it (checked before work and again under the lock), and a second run on
    it fails at once. Each file lands whole: written under a temporary name (TMP_PREFIX) beside
    its place, then renamed over it; a killed run leaves at most such a temporary file, which
    the next run sweeps under the lock. Top-level files are listed in the marker before they
    appear; the files of the `managed` sub-folders (one per sequence, thousands in a large
    dataset) are owned by their folder, so the marker is not rewritten for each of them.
    ``settings`` (JSON-ready) must equal the earlier run's: a folder of other settings is
    refused in one line, never mixed."""

    resumable = True

    def __init__(self, out, command: str, settings: dict, managed: Iterable[str] = (), inputs: Iterable = (),
                 argv: Iterable[str] | None = None):
        super().__init__(out, command, inputs, argv)
        self.settings = json.loads(json.dumps(settings))
        self.managed = sorted(str(m).strip("/") for m in managed)
        self._files: set[str] = set()

    def __enter__(self):
        self._make_parents()
        try:
            self._lock()
            self._sweep_tmp()
            check_output(self.path, kind="folder", inputs=self.inputs, resumable=self.resumable)
            if os.path.lexists(self.path):
                marker = _read_marker(self.path) or {}
                if marker.get("resumable") != self.settings:
                    raise OutputError(f"--out {self.shown} holds a run with other settings "
                                      f"({_settings_diff(marker.get('resumable'), self.settings)}); rerun with the same "
                                      f"settings to resume it, or give another --out")
                self._files = set(marker["files"])
            else:
                self.path.mkdir()
                self._write_marker()
            for d in self.managed:
                self._folder(d)
        except BaseException:
            self._release()
            if not os.path.lexists(self.path):
                self._remove_made_parents()
            raise
        self._staging = self.path
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._staging = None
        self._release()
        return False

    def _sweep_tmp(self) -> None:
        """Half-written files a killed run left (we hold the lock: no live run owns them)."""
        if not self.path.is_dir() or _read_marker(self.path) is None:
            return
        for root, dirs, files in os.walk(self.path):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
            for name in files:
                if name.startswith(TMP_PREFIX):
                    os.unlink(os.path.join(root, name))

    def _folder(self, rel: str) -> pathlib.Path:
        """A sub-folder of the output, made if missing; never a link (nothing is written
        through links)."""
        d = self.path / rel
        if os.path.islink(d) or (d.exists() and not d.is_dir()):
            raise OutputError(f"--out {self.shown}: {rel} is a link or a file, not a folder snnsim made; move it away "
                              f"or give another --out")
        if not d.exists():
            d.mkdir()
            if rel not in self.managed:
                self._files.add(rel)
                self._write_marker()
        return d

    def _target(self, relpath: str) -> pathlib.Path:
        pure = pathlib.PurePosixPath(relpath)
        if ".." in pure.parts or pure.is_absolute() or len(pure.parts) > 2:
            raise ValueError(f"{relpath!r} is not a file or a sub-folder's file of the output folder")
        if len(pure.parts) == 2:
            self._folder(pure.parts[0])
        return self.path / relpath

    def has(self, relpath: str) -> bool:
        owned = relpath in self._files or relpath.split("/", 1)[0] in self.managed
        return owned and (self.path / relpath).is_file() and not (self.path / relpath).is_symlink()

    @contextlib.contextmanager
    def staged(self, relpath: str):
        """A temporary path to write `relpath` at; renamed into place when the block ends
        without an exception, removed otherwise."""
        target = self._target(relpath)
        tmp = target.parent / f"{TMP_PREFIX}{self.identity.run_id[:8]}-{target.name}"
        try:
            yield tmp
            if relpath.split("/", 1)[0] not in self.managed and relpath not in self._files:
                self._files.add(relpath)       # listed before it appears: never an unlisted file of ours
                self._write_marker()
            os.replace(tmp, target)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    def write(self, relpath: str, data: str | bytes) -> pathlib.Path:
        """Write `relpath` (a file, or a sub-folder's file) whole."""
        with self.staged(relpath) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
                fh.flush()
                os.fsync(fh.fileno())
        return self.path / relpath

    def remove(self, relpath: str) -> None:
        """Remove a file of ours (an error report of a sequence that has since finished)."""
        if self.has(relpath):
            os.unlink(self.path / relpath)

    def _write_marker(self) -> None:
        marker = self._marker(sorted(self._files))
        marker["resumable"] = self.settings
        marker["managed"] = self.managed
        tmp = self.path / f"{TMP_PREFIX}{self.identity.run_id[:8]}-marker"
        tmp.write_text(json.dumps(marker, indent=1), encoding="utf-8")
        os.replace(tmp, self.path / MARKER)

    def publish(self) -> pathlib.Path:   # each file is published as it is written
        return self.path


def _settings_diff(old, new: dict) -> str:
    if not isinstance(old, dict):
        return "it is not a resumable run"
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys[:3]) or "unknown"


def open_resumable(out, command: str, settings: dict, managed: Iterable[str] = (), inputs: Iterable = (),
                   argv: Iterable[str] | None = None) -> ResumableFolder:
    return ResumableFolder(out, command, settings, managed, inputs, argv)
