"""YAML that remembers where each value came from and refuses to hide duplicate keys.

PyYAML keeps the last of two equal keys without a word, and its plain data forgets line
numbers. Here the node tree is walked by hand: the result is plain Python data plus the line of
every key and list item, so a config error can say "config.yaml:42".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_ALIAS_NODES = 100_000
"""How many values aliases may add in all: anchors for shared settings stay far below, while a
"billion laughs" document (aliases of aliases, each level ten times the last) is refused
before anything is built from it."""
MAX_DEPTH = 64


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's when present): only plain data, never Python objects."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    path: KeyPath
    line: int
    first_line: int

    def __str__(self) -> str:
        """What every reader reports after `file:line: `."""
        return f"duplicate key {self.path[-1]!r} (first given on line {self.first_line})"


@dataclass(frozen=True, slots=True)
class Document:
    data: Any
    lines: Mapping[KeyPath, int]
    duplicates: tuple[Duplicate, ...]

    def line(self, path: KeyPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that exists (for a missing key)."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None


class YamlSyntaxError(ValueError):
    """The text is not YAML (or not one plain-data document); `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def load_yaml(text: str) -> Document:
    """Parse one YAML document; raise YamlSyntaxError if it cannot be read at all."""
    loader = _Loader(text)
    walker = _Walker(loader)
    try:
        root = loader.get_single_node()
        if root is not None:
            check_node_graph(root)
        data = None if root is None else walker.item(root, ())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        context = error.context or ""
        if error.context_mark is not None and mark is not None and error.context_mark.line != mark.line:
            context += f" (from line {error.context_mark.line + 1})"
        message = ": ".join(part for part in (context, error.problem) if part)
        raise YamlSyntaxError(message, None if mark is None else mark.line + 1) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(str(error), None) from None
    finally:
        loader.dispose()
    return Document(data, walker.lines, tuple(walker.duplicates))


def check_node_graph(root: yaml.Node) -> None:
    """Refuse a composed document whose aliases expand past MAX_ALIAS_NODES values, or that is
    nested deeper than MAX_DEPTH; raise YamlSyntaxError at the line where it happens.

    Every YAML reader calls this between composing and constructing: the node graph is as large
    as the text, only its expansion is not. Linear in the graph, never recursive."""
    sizes = _expanded_sizes(root)
    seen: set[int] = set()
    added = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise YamlSyntaxError(f"nested more than {MAX_DEPTH} levels deep", node.start_mark.line + 1)
        seen.add(id(node))
        for child in reversed(_children(node)):
            if id(child) in seen:
                added += sizes.get(id(child), 1)
                if added > MAX_ALIAS_NODES:
                    raise YamlSyntaxError(
                        f"aliases expand to more than {MAX_ALIAS_NODES:,} values (an alias bomb?)", node.start_mark.line + 1
                    )
            else:
                stack.append((child, depth + 1))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _expanded_sizes(root: yaml.Node) -> dict[int, int]:
    """id(node) -> how many nodes it stands for once every alias in it is expanded (an alias
    to a node still open, i.e. a cycle, counts 1: the walker refuses cycles)."""
    sizes: dict[int, int] = {}
    opened: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if children_done:
            sizes[id(node)] = 1 + sum(sizes.get(id(child), 1) for child in children)
            continue
        if id(node) in opened:
            continue
        opened.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes


class _Walker:
    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.lines: dict[KeyPath, int] = {}
        self.duplicates: list[Duplicate] = []
        self.active: set[int] = set()

    def walk(self, node: yaml.Node, path: KeyPath) -> Any:
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.loader.construct_object(node)
            except ValueError as error:  # a date like 2026-13-45, an integer of 5000 digits
                shown = node.value if len(node.value) <= 20 else node.value[:17] + "..."
                raise YamlSyntaxError(f"cannot read {shown!r}: {str(error).split(';')[0]}", node.start_mark.line + 1) from None
        if id(node) in self.active:
            raise YamlSyntaxError("an alias refers to itself", node.start_mark.line + 1)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.item(child, path + (index,)) for index, child in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)  # the composer makes only scalars, sequences and mappings
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def item(self, node: yaml.Node, path: KeyPath) -> Any:
        self.lines[path] = node.start_mark.line + 1
        return self.walk(node, path)

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        """Explicit keys override merged ones (`<<: *base`); two explicit equal keys are an error."""
        merged: dict[Any, Any] = {}
        explicit: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in reversed(sources):
                    if not isinstance(source, yaml.MappingNode):
                        raise YamlSyntaxError("<< must merge a mapping", source.start_mark.line + 1)
                    merged.update(self.mapping(source, path))
                continue
            key = self.walk(key_node, path)
            line = key_node.start_mark.line + 1
            if isinstance(key, (dict, list)):
                raise YamlSyntaxError("a key must be a plain value, not a mapping or list", line)
            key_path = path + (key,)
            if key in explicit:
                self.duplicates.append(Duplicate(key_path, line, self.lines[key_path]))
            self.lines[key_path] = line
            explicit[key] = self.walk(value_node, key_path)
        return merged | explicit
