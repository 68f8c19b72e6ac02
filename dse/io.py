"""Files at the edge: reading inputs, and the one output layer every command writes through.

Reading: ``read_text``, ``parse_json``, ``parse_yaml`` give the one-line error every loader
gives (a missing file, not UTF-8, bad syntax, a document nested too deeply to parse, a key set
twice, YAML aliases expanding past a million values). ``parse_yaml`` records where each field
is, so a loader's later error about a field names its line (``dse.errors.located``).

Writing: an ``Outputs`` transaction. A command *claims* every output path before it starts
working (a path that is a folder, that is also an input of the run, whose folder is missing or
not writable fails in a second, not after a 20-minute run), *stages* the bytes as it produces
them, and *commits* at the end: every staged file is written in full to a temporary file
beside its target, then all are put in place together (signals held), or none is: a failure
while putting them in place gives the ones already replaced their old contents back. A report
that a command adds a section to is re-read (line endings as they are) and rewritten under a
lock (``flock`` on a sidecar file), so two runs adding sections for different boards keep
both. Rewrites keep the file's mode (and owner, when run as root), write through a symlink to
its target, and write a hard-linked file in place (so its other names see the new text) in an
order that never leaves it cut short: a full disk leaves it exactly as it was. No temporary,
backup or lock file outlives a failure or a signal. Every ``OSError`` becomes a one-line
``DseError`` naming the file.

JSON out is strict (``json_text``): a NaN or infinity is refused, naming where it is, and
nothing is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.errors import DseError, register_lines

# -- reading -----------------------------------------------------------------------------------


#: The most text an input file may hold (characters): dse's largest inputs (a profile, a
#: 10**4-entry measurement log, a report) are a few MB; ``--model /dev/zero`` read until the
#: memory ran out.
MAX_INPUT_CHARS = 256 << 20


def read_text(path: str | Path, what: str, *, exact: bool = False) -> str:
    """Read a UTF-8 input file, or raise the one-line error every loader gives.

    ``what`` names the kind of file (``board``, ``profile``, ``plan`` ...):
    ``FILE: no such board file``, ``FILE: cannot read board file (Is a directory)``.
    ``exact``: keep line endings as they are (``\r\n`` stays): a file dse rewrites (a
    report gaining a section) must come back byte for byte outside dse's own text.
    """
    p = Path(path)
    try:
        with open(p, encoding="utf-8", newline="" if exact else None) as fh:
            text = fh.read(MAX_INPUT_CHARS + 1)
        if len(text) > MAX_INPUT_CHARS:
            raise DseError(f"{p}: cannot read {what} file (more than {MAX_INPUT_CHARS >> 20} "
                           f"MiB of text: no dse input is near that; a device like /dev/zero?)")
        return text
    except FileNotFoundError:
        raise DseError(f"{p}: no such {what} file") from None
    except UnicodeDecodeError:
        raise DseError(f"{p}: cannot read {what} file (not UTF-8 text)") from None
    except OSError as exc:
        raise DseError(f"{p}: cannot read {what} file ({exc.strerror or exc})") from None


def _too_deep(path: object, kind: str) -> DseError:
    return DseError(f"{path}: expected {kind} nested at most a few hundred levels deep "
                    f"(the document is nested too deeply to read)")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class _Duplicated(dict):
    """A JSON object that held a key twice (the last value kept, as ``json`` would)."""

    key: str = ""


def _unique_pairs(found: list) -> Callable[[list], dict]:
    """``object_pairs_hook`` noting objects with a repeated key (``found`` gets True)."""

    def hook(pairs: list) -> dict:
        out: dict = {}
        for k, v in pairs:
            if k in out and not found:
                dup = _Duplicated(out)
                dup.key = k
                out = dup
                found.append(True)
            out[k] = v
        return out

    return hook


def _duplicate_at(tree: Any, where: tuple = ()) -> tuple[tuple, str] | None:
    """(path, key) of the first object of ``tree`` that held a key twice."""
    stack = [(tree, where)]
    while stack:
        obj, at = stack.pop()
        if isinstance(obj, _Duplicated):
            return at, obj.key
        if isinstance(obj, dict):
            stack += [(v, (*at, k)) for k, v in reversed(obj.items())]
        elif isinstance(obj, list):
            stack += [(v, (*at, i)) for i, v in reversed(list(enumerate(obj)))]
    return None


def parse_json(text: str, path: object) -> Any:
    """Parse strict JSON text: ``FILE: line N: expected JSON (...)`` on a syntax error.

    ``NaN`` and ``Infinity`` (which Python's json module reads by default) are refused: they
    are not JSON, and dse never writes them. So is an object holding a key twice: the json
    module would silently keep the last value, which is rarely what the author meant.
    """
    found: list = []
    try:
        data = json.loads(text, parse_constant=_no_constant,
                          object_pairs_hook=_unique_pairs(found))
    except json.JSONDecodeError as exc:
        raise DseError(f"{path}: line {exc.lineno}: expected JSON ({exc.msg})") from None
    except ValueError as exc:
        raise DseError(f"{path}: expected strict JSON ({exc})") from None
    except RecursionError:
        raise _too_deep(path, "JSON") from None
    if found:
        hit = _duplicate_at(data)
        if hit is not None:
            at, key = hit
            field = ".".join(str(p) for p in (*at, key))
            raise DseError(f"{path}: {field}: expected each key once in a JSON object, "
                           f"{key!r} appears more than once (which one was meant?)")
    return data


#: Most values a YAML document may expand to: its aliases (``*a``) repeat a node without
#: copying it, so a few lines can stand for billions of values (a "billion laughs").
MAX_YAML_VALUES = 1_000_000


def _yaml_walk(node: Any, at: tuple, lines: dict[str, int], path: object,
               sizes: dict[int, int]) -> int:
    """Record each node's line under its dotted path, refuse a mapping that holds a key twice,
    and return how many values the node expands to (aliases counted every time)."""
    import yaml

    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 0  # a recursive alias counts as empty, not forever
    if at:
        lines.setdefault(".".join(str(p) for p in at), node.start_mark.line + 1)
    total = 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[tuple, int] = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                ident = (k.tag, k.value)
                if ident in seen:
                    field = ".".join(str(p) for p in (*at, k.value))
                    raise DseError(f"{path}: line {k.start_mark.line + 1}: {field}: expected "
                                   f"each key once, {k.value!r} is already set on line "
                                   f"{seen[ident]} (which one was meant?)")
                seen[ident] = k.start_mark.line + 1
            key = k.value if isinstance(k, yaml.ScalarNode) else "?"
            lines.setdefault(".".join(str(p) for p in (*at, key)), k.start_mark.line + 1)
            total += _yaml_walk(v, (*at, key), lines, path, sizes)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            total += _yaml_walk(v, (*at, i), lines, path, sizes)
    if total > MAX_YAML_VALUES:
        raise DseError(f"{path}: line {node.start_mark.line + 1}: expected a document of at "
                       f"most {MAX_YAML_VALUES:,} values (its aliases expand it to more)")
    sizes[id(node)] = total
    return total


def parse_yaml(text: str, path: object) -> Any:
    """Parse YAML with the safe loader: ``FILE: line N: expected valid YAML (...)``.

    Also refused, each in one line naming the line: a mapping that holds a key twice (the
    safe loader would keep the last value silently: a second ``value:`` in a calibration
    would flip a recommendation), and aliases expanding to more than ``MAX_YAML_VALUES``
    values. Every field's line is registered (``dse.errors.register_lines``), so a loader's
    later error about a field names its line.
    """
    import yaml

    register_lines(path, {})
    # libyaml's parser where the wheel has it (7x faster on dse's files, same documents)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        lines: dict[str, int] = {}
        if node is not None:
            _yaml_walk(node, (), lines, path, {})
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        if "nesting depth" in str(getattr(exc, "problem", "") or exc):  # libyaml's limit
            raise _too_deep(path, "YAML") from None
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "document"
        raise DseError(f"{path}: {where}: expected valid YAML "
                       f"({getattr(exc, 'problem', None) or exc})") from None
    except RecursionError:
        raise _too_deep(path, "YAML") from None
    finally:
        loader.dispose()
    register_lines(path, lines)
    return data


def load_json(path: str | Path, what: str) -> Any:
    """``read_text`` + ``parse_json``."""
    return parse_json(read_text(path, what), path)


def load_yaml(path: str | Path, what: str) -> Any:
    """``read_text`` + ``parse_yaml``."""
    return parse_yaml(read_text(path, what), path)


# -- strict JSON out ---------------------------------------------------------------------------


def _non_finite(obj: Any, where: str = "") -> tuple[str, float] | None:
    """(dotted path, value) of the first NaN or infinity in a JSON-ready tree, if any."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "(top level)", obj
    if isinstance(obj, dict):
        items: Iterable = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for k, v in items:
        hit = _non_finite(v, f"{where}.{k}".lstrip("."))
        if hit:
            return hit
    return None


def json_text(obj: Any, what: str = "JSON", *, indent: int = 1) -> str:
    """Strict JSON (no NaN, no Infinity) ending in a newline.

    A non-finite number is a result no accepted input should produce, so it is refused with
    its location instead of being written as the non-JSON ``NaN``.
    """
    try:
        return json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False) + "\n"
    except ValueError:
        hit = _non_finite(obj)
        if hit is None:
            raise
        raise DseError(f"{what}: {hit[0]}: expected a finite number, got {hit[1]} (nothing "
                       f"was written; the inputs led to a non-finite result)") from None


# -- the output layer --------------------------------------------------------------------------


def os_error(exc: OSError, path: object = None, doing: str = "write") -> DseError:
    """``FILE: cannot write (No space left on device)``: an OSError as one line."""
    where = path if path is not None else (exc.filename or "dse")
    return DseError(f"{where}: cannot {doing} ({exc.strerror or exc})")


def _resolve(path: Path) -> Path:
    """The file a path names, through symlinks (a dangling link names its target)."""
    return Path(os.path.realpath(path))


def _is_stream(path: Path) -> bool:
    """True for an existing output that is not a regular file: ``/dev/stdout``, a FIFO."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _target(path: Path) -> Path:
    """Where an output lands: the file a path names through symlinks, or for a stream the
    path as given (``/dev/stdout`` must not resolve to a ``/proc`` magic link)."""
    return path.absolute() if _is_stream(path) else _resolve(path)


def _same_file(a: Path, b: Path) -> bool:
    """True if two paths name one file: equal once resolved, or one inode (a hard link)."""
    ra, rb = _resolve(a), _resolve(b)
    if ra == rb:
        return True
    try:
        return os.path.samefile(ra, rb)
    except OSError:
        return False


def _default_mode() -> int:
    """The mode a plain ``open()`` would give a new file: 0o666 minus the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@dataclass
class _Pending:
    """One output of a command: where, what kind, and its bytes once staged."""

    path: Path
    target: Path
    what: str
    data: bytes | None = None
    #: For a report rewrite: current text (None if no file yet) -> new text, run in the lock.
    update: Callable[[str | None], str] | None = None
    #: A device or FIFO (``--json /dev/stdout``): written in place, last, never renamed over.
    stream: bool = False


class Outputs:
    """Every file one command writes, checked up front and written together or not at all.

    ::

        out = Outputs(inputs=[args.profile, args.board])
        out.claim(args.json, "JSON")                     # before the work: fails fast
        ...                                              # the work
        out.add(args.json, json_text(data))              # stage
        out.rewrite(report, lambda old: new_text(old))   # re-read and rewritten in the lock
        out.commit()                                     # all or nothing
    """

    def __init__(self, inputs: Iterable[str | Path | None] = ()) -> None:
        self._inputs: list[Path] = []
        self._pending: dict[Path, _Pending] = {}
        for p in inputs:
            self.input(p)

    # -- declaring -------------------------------------------------------------------------
    def input(self, path: str | Path | None) -> None:
        """Name a file this run reads: no output of the run may be the same file."""
        if path is None:
            return
        p = Path(path)
        for pend in self._pending.values():
            if _same_file(p, pend.target):
                raise self._clash(pend.path, pend.what, p)
        self._inputs.append(p)

    @staticmethod
    def _clash(out: Path, what: str, inp: Path) -> DseError:
        return DseError(f"{out}: {what} output is also an input of this run ({inp}); expected "
                        f"a different file, so the input is not overwritten")

    def claim(self, path: str | Path, what: str = "output", *, rewrite: bool = False) -> Path:
        """Check an output path before the work starts; return it.

        Refused: a folder, a file that is also an input of this run or another output of
        it, a folder that does not exist or cannot be written, and (``rewrite``: a report
        the run will add to) an existing file that cannot be read as UTF-8 text.
        """
        p = Path(path)
        target = _target(p)
        if target in self._pending:
            prev = self._pending[target]
            if prev.what == what and prev.path == p:
                return p
            raise DseError(f"{p}: written twice by this run (as {prev.what} and as {what}); "
                           f"expected different files")
        if target.is_dir():
            raise DseError(f"{p}: {what} path is a folder; expected a file name")
        if _is_stream(p):
            if rewrite:
                raise DseError(f"{p}: {what} is not a regular file; expected a file to add a "
                               f"section to")
            self._pending[target] = _Pending(p, target, what, stream=True)
            return p
        for inp in self._inputs:
            if _same_file(inp, target):
                raise self._clash(p, what, inp)
        for pend in self._pending.values():
            if _same_file(pend.target, target):
                raise DseError(f"{p}: written twice by this run (as {pend.what} and as "
                               f"{what}); expected different files")
        folder = target.parent
        if not folder.is_dir():
            shown = p.parent if str(p.parent) else Path(".")
            raise DseError(f"{p}: {what} folder {shown} does not exist")
        _check_writable(folder, p, what)
        if rewrite and target.exists():
            read_text(target, what)
        self._pending[target] = _Pending(p, target, what)
        return p

    # -- staging ---------------------------------------------------------------------------
    def add(self, path: str | Path, data: str | bytes, what: str = "output") -> Path:
        """Stage the full contents of an output (claimed now if it was not yet)."""
        p = Path(path)
        pend = self._pending.get(_target(p)) or self._pending[_target(self.claim(p, what))]
        pend.data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        return p

    def rewrite(self, path: str | Path, update: Callable[[str | None], str],
                what: str = "report") -> Path:
        """Stage a rewrite of a text file that may already exist (a report gaining a section).

        ``update(current)`` gets the file's text as it is inside the lock (None if there is
        no file yet) and returns the new text; it may raise ``DseError`` to abort the commit.
        """
        p = Path(path)
        pend = self._pending.get(_target(p)) or self._pending[
            _target(self.claim(p, what, rewrite=True))]
        pend.update = update
        return p

    # -- committing ------------------------------------------------------------------------
    def commit(self) -> list[Path]:
        """Write every staged output, or none; return the paths written.

        In order, and nothing is replaced before the last step: the reports are re-read
        and rewritten in memory under their locks; every file is written in full to a
        temporary file beside it (a full disk stops here); streams (``/dev/stdout``) are
        written; then, with Ctrl-C and SIGTERM held, every file is put in place. Should one
        of those last steps fail, the files already put in place get their old contents
        back. No temporary file is left on any failure, and an error names the file.
        """
        todo = [pend for pend in self._pending.values()
                if pend.data is not None or pend.update is not None]
        locks = [pend.target for pend in todo if pend.update is not None]
        temps: dict[Path, str] = {}
        done: list[_Undo] = []
        try:
            with _locked(sorted(locks)):
                for pend in todo:
                    if pend.update is not None:
                        current = (read_text(pend.target, pend.what, exact=True)
                                   if pend.target.exists() else None)
                        pend.data = pend.update(current).encode("utf-8")
                files = [pend for pend in todo if not pend.stream]
                # held: a signal here would come between a temporary file and its record
                with signals_held():
                    for pend in files:
                        with _naming(pend, "write"):
                            temps[pend.target] = _stage(pend)
                # not held: a FIFO nobody reads would block; Ctrl-C must still stop it
                for pend in todo:
                    if pend.stream:
                        with _naming(pend, "write"):
                            _write_stream(pend)
                with signals_held():
                    try:
                        for pend in files:
                            with _naming(pend, "replace"):
                                done.append(_install(pend, temps[pend.target]))
                            del temps[pend.target]
                    except BaseException:
                        for undo in reversed(done):
                            undo.rollback()
                        raise
                for undo in done:
                    undo.discard()
        except OSError as exc:  # the locks' sidecar files
            raise os_error(exc, exc.filename) from None
        finally:
            for tmp in temps.values():
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self._pending.clear()
        return [pend.path for pend in todo]


@contextlib.contextmanager
def _naming(pend: _Pending, doing: str) -> Iterator[None]:
    """An OSError while writing ``pend`` as one line naming it (and saying nothing changed)."""
    try:
        yield
    except OSError as exc:
        raise DseError(f"{pend.path}: cannot {doing} {pend.what} ({exc.strerror or exc}); "
                       f"no output of this run was changed") from None


def _check_writable(folder: Path, p: Path, what: str) -> None:
    """Create and remove a scratch file in ``folder``: the only test that also holds for root
    and for read-only mounts."""
    with signals_held():
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".check", dir=folder)
        except OSError as exc:
            raise DseError(f"{p}: cannot write {what} into {folder} ({exc.strerror})"
                           ) from None
        os.close(fd)
        os.unlink(tmp)


#: ``os.pwrite``, through a name tests can replace to fill the disk at a chosen byte.
_pwrite = os.pwrite


def _write_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (``pwrite`` may write less than asked)."""
    view = memoryview(data)
    while view:
        n = _pwrite(fd, view, offset)
        if n <= 0:
            raise OSError(28, "No space left on device")
        view = view[n:]
        offset += n


def _stage(pend: _Pending) -> str:
    """Write the bytes to a temporary file beside the target, with the mode it should have,
    and check they are all there."""
    fd, tmp = tempfile.mkstemp(prefix=f".{pend.target.name}.", suffix=".tmp",
                               dir=pend.target.parent)
    data = pend.data or b""
    try:
        try:
            _write_all(fd, data, 0)
            os.fsync(fd)
            if os.fstat(fd).st_size != len(data):
                raise OSError(5, f"wrote {os.fstat(fd).st_size} of {len(data)} bytes")
        finally:
            os.close(fd)
        try:
            st = os.stat(pend.target)
        except FileNotFoundError:
            os.chmod(tmp, _default_mode())
        else:
            os.chmod(tmp, st.st_mode & 0o7777)
            if os.geteuid() == 0:
                with contextlib.suppress(OSError):
                    os.chown(tmp, st.st_uid, st.st_gid)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _write_stream(pend: _Pending) -> None:
    """A device or FIFO (``--json /dev/stdout``) gets the bytes as they are."""
    with open(pend.target, "wb") as fh:
        fh.write(pend.data or b"")
        fh.flush()


@dataclass
class _Undo:
    """How to take back one installed output: the old file (a hard link to it, kept as
    ``backup``) or its old bytes (a hard-linked file rewritten in place), or nothing to
    restore (the file is new: remove it)."""

    target: Path
    backup: str | None = None
    old_bytes: bytes | None = None
    existed: bool = True

    def rollback(self) -> None:
        with contextlib.suppress(OSError):
            if self.old_bytes is not None:
                _write_in_place(self.target, self.old_bytes)
            elif self.backup is not None:
                os.replace(self.backup, self.target)
                self.backup = None
            elif not self.existed:
                os.unlink(self.target)

    def discard(self) -> None:
        if self.backup is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.backup)


def _install(pend: _Pending, tmp: str) -> _Undo:
    """Put a staged file in place: rename over the target (keeping a hard link to the old
    file until every output is in), or, for a file with other hard links, write into it."""
    try:
        links = os.stat(pend.target).st_nlink
    except FileNotFoundError:
        os.replace(tmp, pend.target)
        return _Undo(pend.target, existed=False)
    if links > 1:
        # Renaming would cut this name off from the file's other names: write in place. The
        # staged copy proved the bytes fit on the disk; removing it first frees that space.
        os.unlink(tmp)
        old = _write_in_place(pend.target, pend.data or b"")
        return _Undo(pend.target, old_bytes=old)
    backup = tmp[: -len(".tmp")] + ".old"
    try:
        os.link(pend.target, backup)
    except OSError:  # a file system without hard links: no way back for this one file
        backup = None
    try:
        os.replace(tmp, pend.target)
    except BaseException:
        if backup is not None:
            with contextlib.suppress(OSError):
                os.unlink(backup)
        raise
    return _Undo(pend.target, backup=backup)


def _write_in_place(target: Path, data: bytes) -> bytes:
    """Rewrite a file in place without ever leaving it cut short; return its old bytes.

    The part of ``data`` beyond the old length is written first (only that needs new disk
    blocks); if the disk fills, the file is cut back to its old length, i.e. left exactly
    as it was. Only then are the old bytes overwritten and the file cut to its new length.
    """
    fd = os.open(target, os.O_RDWR)
    try:
        old = b""
        while chunk := os.read(fd, 1 << 20):
            old += chunk
        overwriting = False
        try:
            if len(data) > len(old):
                _write_all(fd, data[len(old):], len(old))
                os.fsync(fd)
            overwriting = True
            _write_all(fd, data[: len(old)], 0)
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                if overwriting:  # the old bytes were being overwritten: put them back
                    _write_all(fd, old, 0)
                os.ftruncate(fd, len(old))
                os.fsync(fd)
            raise
    finally:
        os.close(fd)
    return old


def lock_path(target: Path) -> Path:
    """The sidecar lock file of ``target`` (it exists only while a run holds the lock)."""
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def _locked(targets: list[Path]) -> Iterator[None]:
    """Hold an exclusive lock on each target (in path order, so two runs never deadlock)."""
    held: list[tuple[int, Path]] = []
    try:
        for target in targets:
            _acquire(lock_path(target), held)
        yield
    finally:
        for fd, path in reversed(held):
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)


def _acquire(path: Path, held: list[tuple[int, Path]]) -> None:
    """flock a sidecar file and add it to ``held``, retrying if the holder before us removed
    it meanwhile.

    The holder unlinks the sidecar before it unlocks, so a waiter that wakes holding a lock
    on a file that is no longer at ``path`` must start again on the new one. The wait can be
    interrupted; taking the lock and recording it cannot be split by a signal.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with signals_held():
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    held.append((fd, path))
                    return
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


#: Signals held while outputs are put in place: Ctrl-C, ``kill`` and a closed terminal.
HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while the renames run, so a signal never leaves half the
    outputs; one that arrives meanwhile is delivered when they are done."""
    main = threading.current_thread() is threading.main_thread()
    if main:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        yield
    finally:
        if main:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


# -- single writes (a command with one output) ---------------------------------------------------


def check_parent(path: str | Path, what: str = "output") -> Path:
    """Check one output path up front (see ``Outputs.claim``)."""
    return Outputs().claim(path, what)


def atomic_write_bytes(path: str | Path, data: bytes, what: str = "output") -> Path:
    """Write one file atomically through the output layer (mode, symlink, links kept)."""
    out = Outputs()
    out.add(path, data, what)
    out.commit()
    return Path(path)


def atomic_write_text(path: str | Path, text: str, what: str = "output") -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), what)
