"""Safe YAML loading that remembers where every value came from.

Spec errors must name ``path:line:column``, so this module turns a YAML file into plain Python
data (dicts, lists, scalars) *and* an index from each value's location path (the same tuples
pydantic reports as an error's ``loc``) to the position of its node. It builds on PyYAML's safe
composer, so nothing here can run code, and adds what PyYAML leaves out:

- only the plain YAML tags (map, seq, str, int, float, bool, null, timestamp) are accepted:
  ``!!python/...`` and any other tag is a reported problem, not a crash or an object;
- duplicate mapping keys are a problem (PyYAML silently keeps the last one);
- alias bombs ("billion laughs") and recursive aliases are refused by counting every node
  built, documents with more than ``MAX_NODES`` nodes are refused while they are composed
  (before they fill memory), and files larger than ``MAX_BYTES`` are refused before parsing;
- only regular files are opened, without blocking (a FIFO or a link to ``/dev/stdin`` is
  refused, never waited on);
- a date-looking scalar that is not a real date (``2024-02-30``) stays a string, so the spec
  layer can say precisely what is wrong with it instead of PyYAML raising ``ValueError``; so
  does the API's spelling of a date (``2024_05_06``), which YAML 1.1 reads as the number
  20240506;
- a file that is no spec at all (not UTF-8, not YAML, a document that is not a mapping: a
  token, a password) is reported by its name and position only, never quoting what is in it.

Every failure raises ``SpecError`` with positions; nothing else escapes.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler._gc import no_cycle_collection
from reconciler.errors import Problem, SpecError, Where
from reconciler.redact import is_secret_file, raw_secret_in

log = logging.getLogger(__name__)

#: Refuse spec files larger than this before parsing them. A spec is a few KiB; 1 MiB holds
#: thousands of AOIs and takes seconds to parse, and directories of any number of files are
#: read, so a larger set of specs is split into files rather than this raised.
MAX_BYTES = 1024 * 1024
#: Refuse documents that expand to more nodes than this (alias bombs, absurd files).
MAX_NODES = 200_000
#: Refuse nesting deeper than this; real specs are about 6 levels deep.
MAX_DEPTH = 64

Loc = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
# Scalars PyYAML's SafeConstructor builds into plain values; anything else (binary, set, omap,
# python/*, custom `!Tags`) has no place in a spec.
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_STR_TAG = _TAG + "str"
_INT_TAG = _TAG + "int"
#: The API's spelling of a date (2024_05_06), which YAML 1.1 resolves to an int.
_API_DATE = re.compile(r"\d{4}_\d{1,2}_\d{1,2}")
_MAP_TAG = _TAG + "map"
_SEQ_TAG = _TAG + "seq"
_MERGE_TAG = _TAG + "merge"

# libyaml's parser, when PyYAML was built with it, composes about ten times faster than the
# pure-Python one, with the same nodes and marks (0-based line, column in characters). It only
# takes the common path: a file it refuses, one with characters YAML does not allow, or one
# beyond the bounds below goes through the pure parser, whose messages (and our hints for
# them) are the ones users see.
_CSafeLoader: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)


class _Resolving:
    """``SafeLoader``'s tag resolution, the same answers, at a dictionary lookup for the
    scalars no implicit resolver can claim (the text of nearly every spec value): libyaml's
    composer asks for every scalar, and PyYAML's general ``resolve`` (with its path resolvers,
    which ``SafeLoader`` has none of) was a fifth of the time spent reading a large spec."""

    _FIRST = {
        first: tuple(resolvers)
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        if first is not None
    }
    assert None not in yaml.SafeLoader.yaml_implicit_resolvers
    assert not yaml.SafeLoader.yaml_path_resolvers

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in self._FIRST.get(value[:1], ()):
                    if regexp.match(value):
                        return str(tag)
            return _STR_TAG
        return _SEQ_TAG if kind is yaml.SequenceNode else _MAP_TAG

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        pass  # no path resolvers

    def ascend_resolver(self) -> None:
        pass


_FastLoader: type[yaml.CSafeLoader] | None = (
    None if _CSafeLoader is None else type("_FastLoader", (_Resolving, _CSafeLoader), {})
)


def _libyaml_limits_nesting() -> bool:
    # From 0.2.5 libyaml refuses nesting deeper than 1000 levels itself, so its composer, which
    # recurses in C, cannot be driven past the stack.
    try:
        version: tuple[int, int, int] = yaml._yaml.get_version()
    except AttributeError:
        return False
    return tuple(version) >= (0, 2, 5)


_LIBYAML_NESTING_LIMITED = _FastLoader is not None and _libyaml_limits_nesting()
#: Every node after the first follows one of these (a key's colon, a list's dash or comma, an
#: opening bracket, a line break): a document has at most twice as many nodes as they occur.
_NODE_SEPARATORS = ",:\n-[{?"
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
_NODE_EVENTS = (yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
_OPEN_EVENTS = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE_EVENTS = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


@dataclass(frozen=True)
class Document:
    """One parsed YAML file: its plain data and the position of every node in it.

    ``values`` maps a location (keys and list indexes from the root, like pydantic's ``loc``)
    to the position of the value there; ``keys`` maps the same location to the position of
    the mapping key that introduced it. ``data`` is None for an empty document.
    """

    path: str
    data: Any
    values: dict[Loc, Where] = field(default_factory=dict)
    keys: dict[Loc, Where] = field(default_factory=dict)

    def where(self, loc: Loc) -> Where:
        """Position of the value at ``loc``, or of its nearest ancestor that has one."""
        for end in range(len(loc), -1, -1):
            found = self.values.get(tuple(loc[:end]))
            if found is not None:
                return found
        return Where(self.path, 1, 1)

    def key_where(self, loc: Loc) -> Where:
        """Position of the key that introduced ``loc`` (falls back to the value's position)."""
        return self.keys.get(tuple(loc)) or self.where(loc)


def read_yaml_file(
    path: str | os.PathLike[str], display: str | None = None
) -> tuple[bytes, Document]:
    """Read and parse one spec file; return its raw bytes (for fingerprints) and the document.

    ``display`` is how the path is shown in messages (as the user gave it). Raises
    ``SpecError`` for an unreadable, special (device, FIFO, socket), too large, non-UTF-8 or
    malformed file.
    """
    shown = display if display is not None else os.fspath(path)
    raw = read_spec_bytes(path, shown)
    return raw, parse_yaml(raw, shown)


def read_spec_bytes(path: str | os.PathLike[str], shown: str) -> bytes:
    """The bytes of one spec file (``read_yaml_file`` without the parsing): ``SpecError`` for
    an unreadable, special or too large file, or the API key file."""
    try:
        return _read_regular_file(path, shown)
    except OSError as exc:
        problem = f"{shown}: cannot read the file: {describe_os_error(exc, shown)}"
        raise SpecError([Problem(problem)]) from None


def _read_regular_file(path: str | os.PathLike[str], shown: str) -> bytes:
    # Non-blocking open: opening a FIFO for reading would otherwise wait for a writer. What is
    # open is then checked with fstat, so a file swapped after the caller's stat is caught too.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    with open(fd, "rb", closefd=True) as handle:
        info = os.fstat(fd)
        kind = special_file_kind(info)
        if kind is not None:
            raise SpecError([Problem(f"{shown}: {kind}, not a spec file; refusing to read it")])
        if is_secret_file(info):
            refused = "the file is the API key file; refusing to read it"
            raise SpecError([Problem(refused, Where(shown, 1, 1))])
        if info.st_size > MAX_BYTES:
            raise SpecError([_too_large(shown, info.st_size)])
        # One byte past the limit, so size is checked on what is read too (a file growing).
        raw = handle.read(MAX_BYTES + 1)
    return screened_spec_bytes(raw, shown)


def screened_spec_bytes(raw: bytes, shown: str) -> bytes:
    """``raw``, the bytes of the spec file ``shown`` however they were read (from disk, from
    git), or ``SpecError`` when they are too many or hold a secret."""
    if len(raw) > MAX_BYTES:
        raise SpecError([_too_large(shown, None)])
    # Refused unparsed, quoting nothing: YAML may read a key as a number (printed in decimal)
    # or an alias (printed without its '*'), forms redaction cannot recognise.
    source = raw_secret_in(raw)
    if source is not None:
        refused = f"the file contains {source}; refusing to read it"
        raise SpecError([Problem(refused, Where(shown, 1, 1))])
    return raw


def _too_large(shown: str, size: int | None) -> Problem:
    found = f" ({size:,} bytes)" if size is not None else ""
    return Problem(
        f"the file is larger than the {_mib(MAX_BYTES)} limit for one spec file{found}; "
        "split it into several files (every *.yaml under a directory is read)",
        Where(shown, 1, 1),
    )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


def special_file_kind(info: os.stat_result) -> str | None:
    """What a non-regular file is ("a FIFO (named pipe)", ...), or None for a regular file."""
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def describe_os_error(exc: OSError, shown: str) -> str:
    """Why a spec path cannot be used, in words (a symlink loop says so)."""
    if exc.errno == errno.ELOOP:
        return "a symlink loop (the link points, through other links, back at itself)"
    if exc.errno == errno.ENOENT:
        if os.path.islink(shown):
            return "a symlink to a file that does not exist"
        return "no such file or directory"
    return exc.strerror or type(exc).__name__


@no_cycle_collection
def parse_yaml(raw: bytes | str, display: str) -> Document:
    """Parse YAML text (bytes must be UTF-8) into a ``Document``; raise ``SpecError`` if bad."""
    text = _decode(raw, display) if isinstance(raw, bytes) else raw
    if text.startswith("\ufeff"):
        text = text[1:]  # A UTF-8 byte order mark is harmless; PyYAML would keep it in str input.
    fast = _compose_fast(text)
    if fast is not None:
        return _document(fast, display)
    loader: yaml.SafeLoader | None = None
    try:
        loader = _BoundedLoader(text)  # checks for unprintable characters right away
        node = loader.get_single_node()
    except _TooManyNodes as exc:
        message = (
            f"the document has more than {MAX_NODES:,} YAML nodes; refusing to load it "
            "(split it into several files)"
        )
        raise SpecError([Problem(message, exc.where(display))]) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(exc, display, text)]) from None
    except yaml.reader.ReaderError as exc:
        where = _where_of_offset(text, exc.position, display)
        message = "a control or other non-printable character, which YAML does not allow; remove it"
        raise SpecError([Problem(message, where)]) from None
    except yaml.YAMLError:
        # Unmarked, so no position to give; its text may quote the file.
        raise SpecError([Problem("invalid YAML", Where(display, 1, 1))]) from None
    except RecursionError:
        # The composer recurses once per nesting level; a pathological file exhausts the stack.
        raise SpecError(
            [Problem("invalid YAML: nesting is too deep", Where(display, 1, 1))]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    return _document(node, display)


def _compose_fast(text: str) -> yaml.Node | None:
    """The node graph by libyaml, or None: not available, an empty file, or any problem."""
    if _FastLoader is None or _NON_PRINTABLE.search(text) or not _surely_bounded(text):
        return None
    loader = _FastLoader(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    except yaml.YAMLError:
        return None  # the pure parser says what is wrong, in its words
    finally:
        loader.dispose()


def _surely_bounded(text: str) -> bool:
    """``_within_bounds`` at the cost of counting some characters, for any document whose
    characters alone show it small enough (nearly every spec file); else measured."""
    if _LIBYAML_NESTING_LIMITED:
        most = 2 * sum(text.count(c) for c in _NODE_SEPARATORS) + 2
        if most <= MAX_NODES:
            return True
    return _within_bounds(text)


def _within_bounds(text: str) -> bool:
    """Whether the document has at most ``MAX_NODES`` nodes, ``MAX_DEPTH`` deep.

    libyaml's composer recurses in C, past Python's recursion limit: a document nested a
    hundred thousand deep would crash the interpreter, where the pure parser reports it. Its
    event parser does not recurse, so the document is measured on its events first (about
    half the cost of composing it).
    """
    assert _FastLoader is not None
    parser = _FastLoader(text)
    nodes = depth = 0
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, _NODE_EVENTS):
                nodes += 1
                if isinstance(event, _OPEN_EVENTS):
                    depth += 1
                if nodes > MAX_NODES or depth > MAX_DEPTH:
                    return False
            elif isinstance(event, _CLOSE_EVENTS):
                depth -= 1
    except yaml.YAMLError:
        return False
    finally:
        parser.dispose()
    return True


def _document(node: yaml.Node | None, display: str) -> Document:
    if node is None:
        return Document(display, None)
    if not isinstance(node, yaml.MappingNode):
        return _not_a_spec(node, display)
    builder = _Builder(display)
    data = builder.build(node, (), 0)
    if builder.problems:
        raise SpecError(builder.problems)
    return Document(display, data, builder.values, builder.keys)


def _not_a_spec(node: yaml.Node, display: str) -> Document:
    """A document that is a list or a single value: no spec, and maybe no YAML either (a
    token or a password parses as one text). Nothing inside is built, so no problem quotes
    it (a tag, a duplicate key); the spec layer says what it is instead of a mapping."""
    builder = _Builder(display)
    data: Any = []
    if isinstance(node, yaml.ScalarNode):
        data = builder.scalar(node) if node.tag in _SCALAR_TAGS else node.value
    return Document(display, data, {(): builder.where(node)})


class _TooManyNodes(Exception):
    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__()
        self.mark = mark

    def where(self, display: str) -> Where:
        mark = self.mark
        return Where(display, mark.line + 1, mark.column + 1) if mark else Where(display, 1, 1)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a document with too many nodes while composing it.

    The node graph of a dense document costs about a kilobyte per node, so counting only
    afterwards (as ``_Builder`` does for alias expansion) would let a file full of tiny items
    fill memory first.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._composed = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._composed += 1
        if self._composed > MAX_NODES:
            raise _TooManyNodes(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
        return super().compose_node(parent, index)


def _decode(raw: bytes, display: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8", errors="replace")
        where = _where_of_offset(before + "x", len(before), display)
        message = "the file is not valid UTF-8 from here on; save it as UTF-8 text"
        raise SpecError([Problem(message, where)]) from None


def _where_of_offset(text: str, offset: int, display: str) -> Where:
    """1-based line and column of a character offset in ``text``."""
    head = text[:offset]
    line = head.count("\n") + 1
    column = offset - (head.rfind("\n") + 1) + 1
    return Where(display, line, column)


# PyYAML's words for the usual slips, and what the author should look at.
_HINTS = {
    "expected <block end>": "check the indentation of this line",
    "mapping values are not allowed here": (
        "check the indentation, or quote a value that contains ': '"
    ),
    "found character '\\t' that cannot start any token": "YAML indents with spaces, not tabs",
}


# What PyYAML quotes from the file: the character, alias, anchor or tag handle it found. In a
# file that is no spec (a password that starts with '*' or '!'), that is part of a secret.
# Its own token names ('<scalar>', '<block end>') and what it expected stay.
_QUOTED_FROM_FILE = re.compile(
    r"\b(?P<word>found|character|alias|anchor|handle) "
    r"(?P<quoted>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
)
_TOKEN_NAME = re.compile(r"'<[a-z ]+>'")


def _unquoted(text: str) -> str:
    """PyYAML's ``text`` without what it quotes from the file."""

    def replace(match: re.Match[str]) -> str:
        if _TOKEN_NAME.fullmatch(match["quoted"]):
            return match[0]
        return "found something else" if match["word"] == "found" else match["word"]

    return _QUOTED_FROM_FILE.sub(replace, text)


#: A colour written unquoted after a key or in a flow list: YAML reads it as a comment.
_UNQUOTED_COLOR = re.compile(r"(?:[:\[,{]|^\s*-)\s*(#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b)")


def _unquoted_color(text: str) -> str:
    """A hint naming the first unquoted hex colour in ``text``, or ''."""
    for number, line in enumerate(text.splitlines(), start=1):
        found = _UNQUOTED_COLOR.search(line)
        if found:
            return (
                f"line {number} has an unquoted colour {found.group(1)}, which YAML reads as the "
                f'start of a comment: quote it ("{found.group(1)}")'
            )
    return ""


def _yaml_problem(exc: yaml.MarkedYAMLError, display: str, text: str = "") -> Problem:
    mark = exc.problem_mark or exc.context_mark
    where = Where(display, mark.line + 1, mark.column + 1) if mark else Where(display, 1, 1)
    problem = (exc.problem or "malformed document").strip()
    message = f"invalid YAML: {_unquoted(problem)}"
    hint = next((h for start, h in _HINTS.items() if problem.startswith(start)), None)
    if exc.context == "expected a single document in the stream":
        message = "invalid YAML: a second document ('---') starts here; a spec file holds one"
        return Problem(message, where)
    if exc.context and exc.context_mark and exc.context_mark is not mark:
        message += (
            f" ({_unquoted(exc.context.strip())} at line {exc.context_mark.line + 1}, "
            f"column {exc.context_mark.column + 1})"
        )
    if hint:
        message += f"; {hint}"
    colour = _unquoted_color(text)
    if colour:
        message += f"; {colour}"
    return Problem(message, where)


class _Builder:
    """Turns a composed node graph into plain data, recording positions and problems."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.values: dict[Loc, Where] = {}
        self.keys: dict[Loc, Where] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self.constructor = yaml.SafeLoader("")  # only its scalar constructors are used
        self.active: set[int] = set()  # nodes on the current path: an alias to one is a loop
        self.over_limit = False
        self.loops: set[int] = set()  # loop nodes already reported

    def where(self, node: yaml.Node) -> Where:
        mark = node.start_mark
        return Where(self.display, mark.line + 1, mark.column + 1)

    def problem(self, message: str, node: yaml.Node) -> None:
        self.problems.append(Problem(message, self.where(node)))

    def build(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            if not self.over_limit:
                self.over_limit = True
                what = "nodes" if self.count > MAX_NODES else "levels of nesting"
                limit = MAX_NODES if self.count > MAX_NODES else MAX_DEPTH
                self.problem(
                    f"the document expands to more than {limit} {what} (aliases expanding "
                    "into a huge document?); refusing to load it",
                    node,
                )
            return None
        self.values[loc] = self.where(node)
        if id(node) in self.active:
            if id(node) not in self.loops:
                self.loops.add(id(node))
                self.problem("an alias refers to a node that contains it (a loop)", node)
            return None
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    self.bad_tag(node)
                return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP_TAG:
                    self.bad_tag(node)
                return self.mapping(node, loc, depth)
        finally:
            self.active.discard(id(node))
        self.problem(f"unsupported YAML node {type(node).__name__}", node)  # pragma: no cover
        return None

    def bad_tag(self, node: yaml.Node) -> None:
        tag = "!!" + node.tag.removeprefix(_TAG) if node.tag.startswith(_TAG) else node.tag
        self.problem(
            f"unsupported YAML tag {tag!r}: specs are plain YAML (mappings, lists, "
            "strings, numbers, dates); remove the tag",
            node,
        )

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR_TAG:
            return node.value  # what the constructor would return, at a fraction of the cost
        if node.tag == _INT_TAG and _API_DATE.fullmatch(node.value):
            # Copied from the API's answers, not meant as a number: as text, the spec layer
            # can say which date it is and how to write it.
            return node.value
        if node.tag not in _SCALAR_TAGS:
            self.bad_tag(node)
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            # E.g. a timestamp-shaped 2024-02-30: keep the text so the spec layer can explain
            # exactly what is wrong with it.
            return node.value

    def mapping(self, node: yaml.MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first: dict[str, yaml.Node] = {}
        for key_node, value_node in self._entries(node):
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.key(key_node)
            if key is None:
                continue
            if key in first:
                seen = self.where(first[key])
                self.problem(
                    f"duplicate key {key!r} (first at line {seen.line}, column {seen.column}); "
                    "YAML keeps only one of them, so remove or merge the other",
                    key_node,
                )
                continue
            first[key] = key_node
            self.keys[(*loc, key)] = self.where(key_node)
            result[key] = self.build(value_node, (*loc, key), depth + 1)
        # `<<: *defaults` merge keys: explicit keys win, as in YAML 1.1.
        for key_node, value_node in self._entries(node):
            if key_node.tag != _MERGE_TAG:
                continue
            is_list = isinstance(value_node, yaml.SequenceNode)
            sources = value_node.value if is_list else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.problem("a merge key (<<) needs a mapping or a list of mappings", source)
                    continue
                for sub_key_node, sub_value_node in self._entries(source):
                    sub_key = self.key(sub_key_node)
                    if sub_key is None or sub_key in result or sub_key_node.tag == _MERGE_TAG:
                        continue
                    self.keys[(*loc, sub_key)] = self.where(sub_key_node)
                    result[sub_key] = self.build(sub_value_node, (*loc, sub_key), depth + 1)
        return result

    @staticmethod
    def _entries(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        yield from node.value

    def key(self, node: yaml.Node) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.problem("a mapping key must be a plain word, not a list or mapping", node)
            return None
        if node.tag not in _SCALAR_TAGS:
            self.bad_tag(node)
            return None
        # Keys are names in a spec: `on:` or `2024:` should read as the text the user typed,
        # not YAML 1.1's True or 2024.
        return str(node.value)
