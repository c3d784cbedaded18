"""Safe YAML loading that remembers where every value came from, so errors can name file:line:col."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from streamtune_cli.errors import Location, Problem, SpecError

__all__ = ["PositionedYaml", "load_yaml_text", "load_yaml_file"]

PathKey = tuple[str | int, ...]

# libyaml's parser composes large specs ~7x faster; it builds the same nodes with the same marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PositionedYaml:
    """Plain Python data from a YAML document plus a map from data path to source position."""

    def __init__(self, data: Any, positions: dict[PathKey, tuple[int, int]], file: str):
        self.data = data
        self.positions = positions
        self.file = file

    def locate(self, path: PathKey) -> Location:
        """Position of the deepest node on `path` that exists (the document start when none does)."""
        path = tuple(path)
        while path:
            if path in self.positions:
                line, col = self.positions[path]
                return Location(self.file, line, col)
            path = path[:-1]
        line, col = self.positions.get((), (1, 1))
        return Location(self.file, line, col)

    def problem(self, path: PathKey, message: str) -> Problem:
        return Problem(self.locate(path), message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


# An input file this size of nodes is already far beyond any job spec; the cap stops alias bombs
# ("billion laughs") from expanding a few hundred bytes into gigabytes.
MAX_EXPANDED_NODES = 1_000_000
_PLAIN_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _expanded_size(node: yaml.Node, sizes: dict[int, int], active: set[int], file: str) -> int:
    """Nodes the document has once every alias is expanded; rejects recursive aliases."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in active:
        line, col = _mark(node)
        raise SpecError([Problem(Location(file, line, col), "a YAML alias refers to itself (recursive structure)")])
    active.add(key)
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes, active, file) + _expanded_size(v, sizes, active, file) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, sizes, active, file) for item in node.value)
    active.discard(key)
    sizes[key] = size
    if size > MAX_EXPANDED_NODES:
        line, col = _mark(node)
        raise SpecError(
            [Problem(Location(file, line, col), f"the document expands to more than {MAX_EXPANDED_NODES:,} values (YAML aliases)")]
        )
    return size


def _convert(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: PathKey,
    positions: dict[PathKey, tuple[int, int]],
    file: str,
) -> Any:
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_COLLECTION_TAGS:
        line, col = _mark(node)
        raise SpecError([Problem(Location(file, line, col), f"unsupported YAML tag {node.tag!r}")])
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<` merge keys the way safe_load does
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                line, col = _mark(key_node)
                raise SpecError([Problem(Location(file, line, col), "mapping keys must be plain scalars")])
            if key in result:
                line, col = _mark(key_node)
                raise SpecError([Problem(Location(file, line, col), f"duplicate key {key!r}")])
            # Point at the key: that is where a reader looks for a misnamed or misplaced field.
            positions[path + (key,)] = _mark(key_node)
            result[key] = _convert(loader, value_node, path + (key,), positions, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            positions[path + (index,)] = _mark(item)
            items.append(_convert(loader, item, path + (index,), positions, file))
        return items
    return loader.construct_object(node, deep=True)


def _problem(exc: yaml.MarkedYAMLError, file: str, prefix: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
    return Problem(Location(file, line, col), f"{prefix}: {exc.problem or exc.context or 'invalid YAML'}")


def _syntax_error(text: str, file: str) -> SpecError:
    """The pure-Python parser's account of a syntax error: it names the offending character and,
    at the end of the stream, the last real line, where libyaml is vaguer."""
    try:
        yaml.SafeLoader(text).get_single_node()
    except yaml.MarkedYAMLError as exc:
        return SpecError([_problem(exc, file, "YAML syntax error")])
    except yaml.YAMLError as exc:
        return SpecError([Problem(Location(file, 1, 1), f"YAML error: {exc}")])
    return SpecError([Problem(Location(file, 1, 1), "YAML syntax error")])


def load_yaml_text(text: str, file: str = "<string>") -> PositionedYaml:
    """Parse one YAML document with the safe loader; syntax errors become a SpecError with a position."""
    loader = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError:
            raise _syntax_error(text, file) from None
        if root is None:
            raise SpecError([Problem(Location(file, 1, 1), "the file is empty")])
        _expanded_size(root, {}, set(), file)
        positions: dict[PathKey, tuple[int, int]] = {(): _mark(root)}
        try:
            data = _convert(loader, root, (), positions, file)
        except yaml.MarkedYAMLError as exc:
            raise SpecError([_problem(exc, file, "YAML error")]) from exc
    finally:
        loader.dispose()
    return PositionedYaml(data, positions, file)


def load_yaml_file(path: str | Path) -> PositionedYaml:
    """Read and parse a YAML file; unreadable files become a SpecError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SpecError([Problem(Location(str(path)), "no such file")]) from exc
    except IsADirectoryError as exc:
        raise SpecError([Problem(Location(str(path)), "is a directory, not a file")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(Location(str(path)), f"cannot read: {exc}")]) from exc
    return load_yaml_text(text, str(path))
