"""Safe YAML loading that remembers where every value came from, so errors can name file:line:col.

Documents are built from the parser's event stream with an explicit stack, so nesting depth, the number of
values (aliases expanded) and recursive aliases are all checked while parsing: a hostile file is refused
after reading as much of it as the limits allow, never after building it whole, and never by a
RecursionError.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from streamtune_cli.errors import Location, Problem, SpecError, excerpt
from streamtune_cli.io import read_text_bounded

__all__ = ["PositionedYaml", "load_yaml_text", "load_yaml_file", "MAX_YAML_VALUES", "MAX_YAML_DEPTH"]

PathKey = tuple[str | int, ...]

# libyaml's parser is several times faster than the pure-Python one and reports the same marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Values (scalars, mappings and sequences, mapping keys included, aliases counted as often as they are
# used) one document may hold: a 50,000-operator job with every cost hint set has about 1,000,000
# (docs/spec.md); the cap stops alias bombs ("billion laughs") and oversized files before they fill memory.
MAX_YAML_VALUES = 2_000_000
# A job spec nests five levels (operators / 0 / join / window / size_s); anything near this is not a spec.
MAX_YAML_DEPTH = 64

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _pack(mark: Any) -> int:
    # (line, column), 1-based, in one int: a position per value is the loader's largest cost in memory.
    return ((mark.line + 1) << 32) | (mark.column + 1)


def _unpack(packed: int) -> tuple[int, int]:
    return packed >> 32, packed & 0xFFFFFFFF


class _Tree:
    """Positions of one mapping's or sequence's members: `marks[key]` and, for members that are
    collections, `children[key]`. Aliased values share their anchor's tree."""

    __slots__ = ("marks", "children")

    def __init__(self, marks: dict[Any, int] | list[int]):
        self.marks = marks
        self.children: dict[Any, _Tree] | None = None


class PositionedYaml:
    """Plain Python data from a YAML document plus where each value came from.

    `source_dir` is the folder of the file it was read from (None for text), against which a spec's
    relative paths (trace schedules) resolve.
    """

    def __init__(self, data: Any, root: tuple[int, _Tree | None], file: str, source_dir: Path | None = None):
        self.data = data
        self._root = root
        self.file = file
        self.source_dir = source_dir

    def locate(self, path: PathKey) -> Location:
        """Position of the deepest node on `path` that exists (the document start when none does)."""
        packed, tree = self._root
        for part in path:
            if tree is None:
                break
            marks = tree.marks
            if isinstance(marks, dict):
                if part not in marks:
                    break
                packed = marks[part]
            else:
                if not isinstance(part, int) or isinstance(part, bool) or not 0 <= part < len(marks):
                    break
                packed = marks[part]
            tree = tree.children.get(part) if tree.children else None
        line, col = _unpack(packed)
        return Location(self.file, line, col)

    def problem(self, path: PathKey, message: str) -> Problem:
        return Problem(self.locate(path), message)


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = ("value", "tree", "is_map", "key", "key_mark", "anchor", "start_count", "start", "merges")

    def __init__(self, is_map: bool, anchor: str | None, start_count: int, start: int):
        self.is_map = is_map
        self.value: Any = {} if is_map else []
        self.tree = _Tree({} if is_map else [])
        self.key: Any = _NO_KEY
        self.key_mark = 0
        self.anchor = anchor
        self.start_count = start_count
        self.start = start
        self.merges: list[tuple[Any, _Tree | None, int]] = []


_NO_KEY = object()
_MERGE = object()
_OPEN = object()


class _Builder:
    """Turns the parser's events into data and position trees, checking the limits as it goes."""

    def __init__(self, loader: Any, file: str):
        self.loader = loader
        self.file = file
        self.count = 0
        self.from_aliases = 0
        self.stack: list[_Frame] = []
        self.anchors: dict[str, Any] = {}
        self.resolved: dict[tuple[str, Any], tuple[str, Any]] = {}
        self.result: tuple[Any, int, _Tree | None] | None = None

    def fail(self, packed: int, message: str) -> SpecError:
        line, col = _unpack(packed)
        return SpecError([Problem(Location(self.file, line, col), message)])

    def _grow(self, n: int, packed: int, aliased: bool) -> None:
        self.count += n
        if aliased:
            self.from_aliases += n
        if self.count > MAX_YAML_VALUES:
            if self.from_aliases:
                what = f"expands to more than {MAX_YAML_VALUES:,} values ({self.from_aliases:,} of them from YAML aliases)"
            else:
                what = f"has more than {MAX_YAML_VALUES:,} values"
            raise self.fail(packed, f"the document {what}: larger than any job streamtune supports (docs/spec.md, size limits)")

    def build(self) -> None:
        get_event = self.loader.get_event
        while True:
            event = get_event()
            cls = type(event)
            if cls is yaml.ScalarEvent:
                self.scalar(event)
            elif cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
                self.start(event, cls is yaml.MappingStartEvent)
            elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                self.end()
            elif cls is yaml.AliasEvent:
                self.alias(event)
            elif cls is yaml.DocumentEndEvent:
                following = get_event()
                if not isinstance(following, yaml.StreamEndEvent):
                    raise self.fail(_pack(following.start_mark), "expected a single YAML document, found another")
                return
            elif cls is yaml.StreamEndEvent:
                return

    def _key_position_check(self, packed: int) -> None:
        top = self.stack[-1] if self.stack else None
        if top is not None and top.is_map and top.key is _NO_KEY:
            raise self.fail(packed, "mapping keys must be plain scalars")

    def start(self, event: Any, is_map: bool) -> None:
        packed = _pack(event.start_mark)
        self._key_position_check(packed)
        tag = event.tag
        if tag not in (None, "!", _MAP_TAG if is_map else _SEQ_TAG):
            raise self.fail(packed, f"unsupported YAML tag {excerpt(tag)}")
        if len(self.stack) >= MAX_YAML_DEPTH:
            raise self.fail(packed, f"the document nests deeper than {MAX_YAML_DEPTH} levels: not a streamtune file")
        self._grow(1, packed, False)
        if event.anchor is not None:
            self.anchors[event.anchor] = _OPEN
        self.stack.append(_Frame(is_map, event.anchor, self.count, packed))

    def end(self) -> None:
        frame = self.stack.pop()
        value = frame.value
        if frame.merges:
            value = self._merged(frame)
        tree = frame.tree
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (value, tree, self.count - frame.start_count + 1)
        self.attach(value, frame.start, tree)

    def _merged(self, frame: _Frame) -> dict[Any, Any]:
        """YAML merge keys (`<<`): keys given explicitly win, then the first merged mapping that has them;
        merged entries come first, as PyYAML orders them."""
        merged: dict[Any, Any] = {}
        marks: dict[Any, int] = {}
        children: dict[Any, _Tree] = {}
        explicit = frame.value
        for source, tree, _ in frame.merges:
            for key, item in source.items():
                if key in explicit or key in merged:
                    continue
                merged[key] = item
                if tree is not None:
                    marks[key] = tree.marks[key]  # type: ignore[index]
                    if tree.children and key in tree.children:
                        children[key] = tree.children[key]
        merged.update(explicit)
        own = frame.tree
        marks.update(own.marks)  # type: ignore[arg-type]
        children.update(own.children or {})
        own.marks = marks
        own.children = children or None
        return merged

    def alias(self, event: Any) -> None:
        packed = _pack(event.start_mark)
        found = self.anchors.get(event.anchor, None)
        if found is None:
            raise self.fail(packed, f"undefined YAML alias {excerpt('*' + event.anchor)}")
        if found is _OPEN:
            raise self.fail(packed, "a YAML alias refers to itself (recursive structure)")
        value, tree, size = found
        top = self.stack[-1] if self.stack else None
        if top is not None and top.is_map and top.key is _NO_KEY and isinstance(value, (dict, list)):
            raise self.fail(packed, "mapping keys must be plain scalars")
        self._grow(size, packed, True)
        self.attach(value, packed, tree)

    def scalar(self, event: Any) -> None:
        mark = event.start_mark
        packed = ((mark.line + 1) << 32) | (mark.column + 1)
        self.count += 1
        if self.count > MAX_YAML_VALUES:
            self._grow(0, packed, False)  # raises
        text = event.value
        tag = event.tag
        # Specs repeat the same short scalars (kinds, partitionings, small numbers): resolve each once.
        key = (text, event.implicit) if (tag is None or tag == "!") and len(text) <= 32 else None
        cached = self.resolved.get(key) if key is not None else None
        if cached is not None:
            tag, value = cached
        else:
            if tag is None or tag == "!":
                tag = self.loader.resolve(yaml.ScalarNode, text, event.implicit)
            value = text if tag == _STR_TAG or tag == _MERGE_TAG else self._construct(tag, event, packed)
            if key is not None and len(self.resolved) < 10_000:
                self.resolved[key] = (tag, value)
        stack = self.stack
        if tag == _MERGE_TAG and stack and stack[-1].is_map and stack[-1].key is _NO_KEY:
            stack[-1].key, stack[-1].key_mark = _MERGE, packed
            return
        if tag == _MERGE_TAG:
            value = self._construct(tag, event, packed)  # `<<` as a value: the constructor's error
        self.attach(value, packed, None)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, None, 1)

    def _construct(self, tag: str, event: Any, packed: int) -> Any:
        constructor = self.loader.yaml_constructors.get(tag)
        if constructor is None:
            raise self.fail(packed, f"unsupported YAML tag {excerpt(tag)}")
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return constructor(self.loader, node)
        except yaml.MarkedYAMLError as exc:
            raise self.fail(packed, f"YAML error: {_clip(exc.problem or 'invalid value')}") from None
        except (ValueError, OverflowError, TypeError) as exc:
            # int() past Python's digit limit, timestamps such as 2024-13-45, bad base64.
            reason = "a number this long is out of every range" if "digits" in str(exc) else _clip(str(exc))
            raise self.fail(packed, f"cannot read value {excerpt(event.value)}: {reason}") from None

    def attach(self, value: Any, packed: int, tree: _Tree | None) -> None:
        """Put a finished value where it belongs: a key, a member, or the document itself."""
        if not self.stack:
            self.result = (value, packed, tree)
            return
        top = self.stack[-1]
        if not top.is_map:
            index = len(top.value)
            top.value.append(value)
            top.tree.marks.append(packed)  # type: ignore[union-attr]
            if tree is not None:
                if top.tree.children is None:
                    top.tree.children = {}
                top.tree.children[index] = tree
            return
        if top.key is _NO_KEY:
            try:
                hash(value)
            except TypeError:
                raise self.fail(packed, "mapping keys must be plain scalars") from None
            if not isinstance(value, (str, int, float, bool)) and value is not None:
                raise self.fail(packed, "mapping keys must be plain scalars")
            if value in top.value:
                raise self.fail(packed, f"duplicate key {excerpt(value)}")
            top.key, top.key_mark = value, packed
            return
        key, top.key = top.key, _NO_KEY
        if key is _MERGE:
            self._merge_source(top, value, packed, tree)
            return
        top.value[key] = value
        # Point at the key: that is where a reader looks for a misnamed or misplaced field.
        top.tree.marks[key] = top.key_mark  # type: ignore[call-overload]
        if tree is not None:
            if top.tree.children is None:
                top.tree.children = {}
            top.tree.children[key] = tree

    def _merge_source(self, frame: _Frame, value: Any, packed: int, tree: _Tree | None) -> None:
        if isinstance(value, dict):
            frame.merges.append((value, tree, packed))
            return
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            for index, item in enumerate(value):
                sub = tree.children.get(index) if tree is not None and tree.children else None
                frame.merges.append((item, sub, packed))
            return
        raise self.fail(frame.key_mark, "a merge key (<<) takes a mapping or a list of mappings")


def _clip(text: str, limit: int = 120) -> str:
    """A library's message, one line, cut: some quote the whole offending input."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _error_position(exc: yaml.YAMLError, text: str) -> tuple[int | None, int | None]:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return (mark.line + 1, mark.column + 1) if mark else (None, None)
    position = getattr(exc, "position", None)  # ReaderError: an index into the text
    if isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        return line, position - (text.rfind("\n", 0, position) + 1) + 1
    return None, None


def _syntax_error(text: str, file: str) -> SpecError:
    """The pure-Python parser's account of a syntax error: it names the offending character and, at the
    end of the stream, the last real line, where libyaml is vaguer. Only events are parsed (no nodes, no
    recursion), so this costs no more than the first pass."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # its reader checks every character up front: it may raise here
        while not isinstance(loader.get_event(), yaml.StreamEndEvent):
            pass
    except yaml.YAMLError as exc:
        line, col = _error_position(exc, text)
        if isinstance(exc, yaml.MarkedYAMLError):
            reason = exc.problem or exc.context or "invalid YAML"
        elif isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, (int, str)):
            code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
            reason = f"character U+{code:04X} is not allowed in YAML"
        else:
            reason = getattr(exc, "reason", None) or "invalid YAML"
        return SpecError([Problem(Location(file, line or 1, col or 1), f"YAML syntax error: {_clip(reason)}")])
    finally:
        if loader is not None:
            loader.dispose()
    return SpecError([Problem(Location(file, 1, 1), "YAML syntax error")])


def load_yaml_text(text: str, file: str = "<string>", source_dir: Path | None = None) -> PositionedYaml:
    """Parse one YAML document with the safe loader; every problem becomes a SpecError with a position."""
    loader = _Loader(text)
    builder = _Builder(loader, file)
    try:
        try:
            builder.build()
        except yaml.YAMLError:
            raise _syntax_error(text, file) from None
    finally:
        loader.dispose()
    if builder.result is None:
        raise SpecError([Problem(Location(file, 1, 1), "the file is empty")])
    data, packed, tree = builder.result
    return PositionedYaml(data, (packed, tree), file, source_dir)


def load_yaml_file(path: str | Path) -> PositionedYaml:
    """Read (a regular file, size-capped, UTF-8) and parse a YAML file; every failure names the file."""
    path = Path(path)
    if not os.path.lexists(path):
        raise SpecError([Problem(Location(str(path)), "no such file")])
    text = read_text_bounded(path, "YAML file")
    return load_yaml_text(text, str(path), path.resolve().parent)
