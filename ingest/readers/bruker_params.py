"""Bruker JCAMP-style parameter files (acqus, acqu2s, procs): text -> dict, as nmrglue parses them.

:func:`parse_jcamp` gives the keys and values of ``nmrglue.bruker.read_jcamp`` (same
types, same quirks: parsing stops at ``##END=`` or at the first empty line; an entry that
cannot be parsed is left out) without importing nmrglue, which imports scipy.signal (~1 s
of start-up).  tests/test_batch_workers.py compares the two on every real parameter file
in the shared test data.  :func:`read_acqus` (also ``ingest.readers.bruker.read_acqus``) adds
the file checks and a small cache keyed by path, mtime, size and inode, and parses a file that
differs from the last one of its name parsed in a few one-line values or ``$$`` comments
(consecutive expnos of a series: the date, the path, ``DATE``) by patching that one's entries
(:func:`_parse_like`: the same entries, ~1 ms less a TopSpin acqus).
"""

from __future__ import annotations

import itertools
import operator
import os
import stat
from pathlib import Path
from typing import Any

from ingest.readers.checks import read_small, regular_size
from ingest.types import IngestError

__all__ = ["parse_jcamp", "read_acqus"]

_MAX_PARAM_BYTES = 16 << 20


def _jcamp_value(text: str) -> Any:
    """One value as nmrglue's ``parse_jcamp_value``: ``<s>`` -> str, numbers -> int/float."""
    if text == "":
        return None
    if text.startswith("<") and text.endswith(">"):
        return text[1:-1]
    try:
        return float(text) if ("." in text or "e" in text or "inf" in text) else int(text)
    except ValueError:
        return text


def _jcamp_values(tokens: list[str]) -> list[Any]:
    """:func:`_jcamp_value` of each token of an array line, in one comprehension: a TopSpin
    acqus holds ~800 array values, parsed in ~0.4 ms this way instead of ~1 ms.  Tokens
    from ``str.split`` are never empty, and a number never starts with ``<``: whenever
    every token converts, the result is :func:`_jcamp_value`'s; otherwise it is used.
    Integers first, in one ``map`` (~4 times faster again): ``int`` accepts no token holding
    ``.``, ``e`` or ``inf``, so where it accepts them all each is a token given to ``int``."""
    try:
        return list(map(int, tokens))
    except ValueError:
        pass
    try:
        return [float(t) if ("." in t or "e" in t or "inf" in t) else int(t) for t in tokens]
    except ValueError:
        return [_jcamp_value(t) for t in tokens]


def _jcamp_entry(line: str, lines: Any) -> tuple[str, Any]:
    """``##$KEY= value`` (more lines from the iterator ``lines`` for strings and arrays)."""
    eq = line.index("=")
    key, text = line[3:eq], line[eq + 1:].lstrip()
    if "<" in text:  # a string, possibly over several lines
        while ">" not in text:
            nxt = next(lines, None)
            if nxt is None:  # unterminated at the end of the file (nmrglue loops for ever here)
                raise ValueError(f"{key}: string not closed by '>'")
            text += "\n" + nxt.rstrip()
        return key, text[1:-1]
    if "(" in text:  # an array: (0..n) then n + 1 values over the following lines
        num = int(line[line.index("..") + 2:line.index(")")]) + 1
        value = _jcamp_values(line[line.index(")") + 1:].split())
        while len(value) < num:
            nxt = next(lines, None)
            if nxt is None:
                break
            value += _jcamp_values(nxt.split())
        return key, value
    if text in ("yes", "no"):
        return key, text == "yes"
    return key, _jcamp_value(text)


def parse_jcamp(text: str) -> dict[str, Any]:
    """Parameters of a Bruker JCAMP-style file (acqus, procs), as ``nmrglue.bruker.read_jcamp``.

    Parameters
    ----------
    text : str
        The file's text (TopSpin writes Latin-1).

    Returns
    -------
    dict
        ``KEY -> value`` for every ``##$KEY=`` (int, float, str, bool or list), plus
        ``_coreheader`` (``##KEY=`` lines) and ``_comments`` (``$$`` lines).  Parsing stops
        at ``##END=`` or at the first empty line, as nmrglue's does; an entry that cannot be
        parsed is left out (nmrglue warns and leaves it out).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _parse_lines(text.split("\n"), None)


def _parse_lines(all_lines: list[str], where: _Where | None) -> dict[str, Any]:
    """:func:`parse_jcamp` of the file's lines (line ends normalised); with ``where``, also
    records which line gave what (:class:`_Where`, for :func:`_parse_like`)."""
    dic: dict[str, Any] = {"_coreheader": [], "_comments": []}
    core, comments = dic["_coreheader"], dic["_comments"]
    lines = iter(all_lines)
    n = len(all_lines)
    for raw in lines:
        line = raw.rstrip()
        if line[:3] == "##$":  # cannot be "" or "##END=": tested first, the commonest line
            eq = line.find("=")
            value = line[eq + 1:].lstrip()
            if eq >= 0 and "<" not in value and "(" not in value:
                # a one-line scalar, as _jcamp_entry and _jcamp_value parse it, without the calls
                # (~1 us each here, ~800 of them in a TopSpin acqus)
                if value in ("yes", "no"):
                    dic[line[3:eq]] = value == "yes"
                elif value == "":
                    dic[line[3:eq]] = None
                else:
                    try:
                        dic[line[3:eq]] = float(value) if ("." in value or "e" in value or "inf" in value) else int(value)
                    except ValueError:
                        dic[line[3:eq]] = value
                if where is not None:
                    where.scalar(n - lines.__length_hint__() - 1, line[3:eq])
                continue
            at = n - lines.__length_hint__() - 1
            try:
                key, val = _jcamp_entry(line, lines)
            except (ValueError, IndexError):
                continue
            dic[key] = val
            if where is not None:
                where.last[key] = at  # a multi-line entry: its key is set here, never patched
        elif line == "" or line.startswith("##END="):
            break
        elif line.startswith("$$"):
            comments.append(line)
            if where is not None:
                where.comment[n - lines.__length_hint__() - 1] = len(comments) - 1
        elif line.startswith("##"):
            core.append(line)
    return dic


class _Where:
    """Which line of a parsed file gave what: ``key_at[i]`` the key of a one-line scalar
    ``##$KEY= value`` parsed at line ``i``, ``last[key]`` the last line that set ``key`` (its
    value is that line's), ``comment[i]`` the index in ``_comments`` of the ``$$`` line ``i``,
    ``lists`` the keys whose values are lists (one-line scalars never are).
    Lines not listed (core header, multi-line entries and their continuation, the end, what
    follows it) are never patched."""

    __slots__ = ("comment", "key_at", "last", "lists")

    def __init__(self) -> None:
        self.key_at: dict[int, str] = {}
        self.last: dict[str, int] = {}
        self.comment: dict[int, int] = {}
        self.lists: tuple[str, ...] = ()  # the keys whose values are lists

    def scalar(self, i: int, key: str) -> None:
        self.key_at[i] = key
        self.last[key] = i


def _scalar_value(value: str) -> Any:
    """The value :func:`_parse_lines` gives a one-line scalar (``value`` stripped on the left,
    holding neither ``<`` nor ``(``)."""
    if value in ("yes", "no"):
        return value == "yes"
    if value == "":
        return None
    try:
        return float(value) if ("." in value or "e" in value or "inf" in value) else int(value)
    except ValueError:
        return value


#: At most this many lines may differ from the last file parsed for :func:`_parse_like` to patch.
_MAX_PATCHED = 16


def _parse_like(raw: bytes, last: tuple[list[bytes], dict[str, Any], _Where] | None
                ) -> tuple[dict[str, Any], tuple[list[bytes], dict[str, Any], _Where] | None]:
    """:func:`parse_jcamp` of the file's bytes ``raw`` (Latin-1), patched from the last file
    parsed when it can be.

    Consecutive expnos of a series carry parameter files that differ in a few lines (the
    ``$$`` date and path, ``DATE``): parsed in full, a TopSpin acqus costs ~1 ms; here the
    lines are compared with those of the last file parsed in full (same number of lines) and, when every differing
    line is a ``$$`` comment line that stays one, or a one-line scalar ``##$KEY= value`` that
    stays a one-line scalar of the same key and is the line that set that key, that file's
    entries are copied with those values replaced: what a full parse gives (the parse reads
    each such line on its own, and no other line's meaning depends on it;
    tests/test_bruker_batch_read.py compares the two on real and altered files).  Anything
    else is parsed in full.  Lines are compared as bytes (Latin-1 maps each byte to one
    character, so they split where the text does); a file holding ``\\r`` is always parsed
    in full.  Returns (entries, the new ``last``: ``last`` itself after a patch, else the file
    just parsed, whose lists are copies, so that changes to entries handed out never reach
    it); ``last`` is never modified.
    """
    plain = b"\r" not in raw
    if plain and last is not None:
        lines = raw.split(b"\n")
        old, dic, where = last
        if len(old) == len(lines):
            diff = list(itertools.islice(itertools.compress(itertools.count(), map(operator.ne, old, lines)),
                                         _MAX_PATCHED + 1))
            patched = _patched(lines, diff, dic, where) if len(diff) <= _MAX_PATCHED else None
            if patched is not None:
                return patched, last  # the base stays the file parsed in full
    text = raw.decode("latin-1")
    if not plain:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    where = _Where()
    dic = _parse_lines(text.split("\n"), where)
    where.lists = tuple(k for k, v in dic.items() if type(v) is list)
    if not plain:
        return dic, None
    return dic, (raw.split(b"\n"), _own_lists(dic, where), where)  # lists of its own: none handed out


def _own_lists(dic: dict[str, Any], where: _Where) -> dict[str, Any]:
    """A copy of ``dic`` whose lists (arrays, ``_comments``, ``_coreheader``) are copies too."""
    out = dict(dic)
    for k in where.lists:
        out[k] = out[k].copy()
    return out


def _patched(lines: list[bytes], diff: list[int], dic: dict[str, Any], where: _Where) -> dict[str, Any] | None:
    """``dic`` (a parse of a file differing from ``lines`` at the lines ``diff``) with the new
    lines' values, or None when a differing line is not one that can be patched."""
    out = _own_lists(dic, where)  # no two files' entries share a list (the base's stay its own)
    for i in diff:
        line = lines[i].decode("latin-1").rstrip()
        key = where.key_at.get(i)
        if key is not None:
            eq = line.find("=")
            value = line[eq + 1:].lstrip()
            if (line[:3] != "##$" or eq < 0 or line[3:eq] != key or "<" in value or "(" in value
                    or where.last[key] != i):
                return None
            out[key] = _scalar_value(value)
        elif i in where.comment and line.startswith("$$") and "_comments" not in where.last:  # (no ##$_comments=)
            out["_comments"][where.comment[i]] = line
        else:
            return None
    return out


def read_acqus(path: str | Path, *, _stamp: tuple | None = None) -> dict[str, Any]:
    """Parse a Bruker JCAMP-style parameter file (acqus, acqu2s, procs).

    Parameters
    ----------
    path : str or Path
        The parameter file.
    _stamp : tuple, optional
        Internal: (path, mtime_ns, size, inode) of the regular file ``path`` as
        :func:`ingest.readers.bruker.is_params` has just stat'ed it (not stat'ed again).

    Returns
    -------
    dict
        ``KEY -> value`` as nmrglue parses it (numbers as int/float, ``<text>``
        as str, arrays as lists); comment lines under ``_comments``.

    Raises
    ------
    IngestError
        The file is missing, empty or holds no ``##$`` parameters.
    """
    p = os.fspath(path)  # a string: no Path object unless there is an error to report
    if _stamp is not None and _stamp[0] == p:
        return _read_stamped(p, _stamp, _stamp[2])
    try:
        st = os.stat(p)  # one stat: the cache key, and whether the file is there at all
        stamp: tuple | None = (p, st.st_mtime_ns, st.st_size, st.st_ino)
    except FileNotFoundError:
        raise IngestError(p, "parameter file is missing") from None
    except OSError:
        stamp = None
    return _read_stamped(p, stamp, st.st_size if stamp is not None and stat.S_ISREG(st.st_mode) else None)


def _read_stamped(p: str, stamp: tuple | None, size: int | None) -> dict[str, Any]:
    """:func:`read_acqus` once the file is stat'ed (``stamp`` None: it could not be;
    ``size``: of the regular file, else None)."""
    if stamp is not None:
        hit = _ACQUS_CACHE.get(stamp)  # completeness check, then the reader
        if hit is not None:
            return dict(hit[0])
    last = _LAST_READ[0]  # the bytes is_params has just read of this very file, if it has
    raw = last[1] if last is not None and last[0] == stamp else None
    dic, head = _read_acqus(p, size, raw)
    if stamp is not None:
        if len(_ACQUS_CACHE) >= 64:
            _ACQUS_CACHE.pop(next(iter(_ACQUS_CACHE)))
        _ACQUS_CACHE[stamp] = (dic, head)
    return dict(dic)


def remember_read(stamp: tuple, raw: bytes) -> None:
    """Keep the whole text of a parameter file just read in the state ``stamp`` (path, mtime_ns,
    size, inode) by :func:`ingest.readers.bruker.is_params`: :func:`read_acqus`, asked next
    for the same file in the same state, parses it without reading it again."""
    _LAST_READ[0] = (stamp, raw)


#: (stamp, bytes) of :func:`remember_read` (one file: the reader asks right after is_params).
_LAST_READ: list[tuple[tuple, bytes] | None] = [None]


def cached_head(stamp: tuple) -> bytes | None:
    """The first 8192 bytes of a parameter file :func:`read_acqus` parsed in the state ``stamp``
    (path as given, mtime_ns, size, inode), or None: what
    :func:`ingest.readers.bruker.is_params` looks at, without opening the file again."""
    hit = _ACQUS_CACHE.get(stamp)
    return None if hit is None else hit[1]


#: The last parameter file of each name (acqus, procs, acqu2s) :func:`_read_acqus` parsed in
#: full (its lines, entries and :class:`_Where`): the next one of that name is patched from it
#: where they differ in a few lines (:func:`_parse_like`).  By name, because the reader parses
#: an expno's acqus and then its procs: each is compared with its own kind.
_LAST_PARSED: dict[str, tuple[list[bytes], dict[str, Any], _Where]] = {}
_MAX_NAMES = 8

#: Parsed parameter files (and their first 8 kB) by (path, mtime_ns, size, inode): a file
#: parsed for the completeness check is not parsed again by the reader; any rewrite changes
#: the key.
_ACQUS_CACHE: dict[tuple, tuple[dict[str, Any], bytes]] = {}


def _read_acqus(p: str, size: int | None = None, raw: bytes | None = None) -> tuple[dict[str, Any], bytes]:
    """(parameters, first 8192 bytes) of a parameter file (``size``: of the regular file, when
    just stat'ed; ``raw``: its bytes, when just read in that state)."""
    if size is None:
        size = regular_size(p, "parameter file")
    if size == 0:
        raise IngestError(p, "parameter file is empty")
    if size > _MAX_PARAM_BYTES:
        raise IngestError(p, f"parameter file holds {size} bytes: not a Bruker acqus (a few kB)")
    if raw is None or len(raw) != size:
        raw = read_small(p, size, to_end=True)  # bounded by _MAX_PARAM_BYTES above: read once, its head checked
    head = raw[:256]
    if not head.lstrip().startswith(b"##") or b"\x00" in head:
        raise IngestError(p, f"not a Bruker JCAMP parameter file (starts {head[:16]!r}, expected '##TITLE=')")
    try:
        name = os.path.basename(p)
        dic, last = _parse_like(raw, _LAST_PARSED.get(name))
        if last is not None:
            if name not in _LAST_PARSED and len(_LAST_PARSED) >= _MAX_NAMES:
                _LAST_PARSED.pop(next(iter(_LAST_PARSED)))
            _LAST_PARSED[name] = last
    except Exception as exc:  # garbage: assorted errors
        raise IngestError(p, f"not a Bruker JCAMP parameter file ({exc})") from exc
    if not any(not k.startswith("_") for k in dic):
        raise IngestError(p, "not a Bruker JCAMP parameter file (no ##$KEY= lines)")
    return dic, raw[:8192]
