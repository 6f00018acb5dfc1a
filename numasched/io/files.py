"""Reading input files safely: one text reader and one YAML loader for every reader.

``read_text(path)`` reads a regular file only (a device such as ``/dev/zero``, a FIFO or a socket
is refused without blocking), at most ``limits.current().max_file_bytes`` bytes counted as they
are read (a file that grows, or a ``/proc`` file whose size says 0, cannot get past it), decodes
UTF-8 and drops a leading byte-order mark.

``load_yaml(text, source)`` returns the documents of a YAML (or JSON) text as plain data:

- safe types only (mappings, lists, strings, numbers, booleans, null; never Python objects),
  parsed by libyaml (PyYAML's C loader, about ten times faster) when it is installed, else by
  PyYAML's pure-Python loader, with the same checks either way;
- a key given twice in one mapping is refused (``cpu: "1"`` then ``cpu: "48"`` would silently
  mean 48); the merge key ``<<`` may still be overridden by the mapping's own keys, as YAML says;
- nesting deeper than ``max_yaml_depth``, more than ``max_objects`` documents, and aliases
  that would expand to more nodes than the text has characters are refused before anything is
  built, so no input can exhaust the stack or the memory.

Every refusal is one ``ValueError`` line: the source, the problem, the line and column.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError
from yaml.events import (AliasEvent, CollectionEndEvent, CollectionStartEvent, DocumentStartEvent,
                         NodeEvent)

from . import limits as _limits

# PyYAML's C loader when libyaml is installed (the usual wheel), else the pure-Python one.
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
C_LOADER = _BASE_LOADER is not yaml.SafeLoader
_BOM = "\ufeff"
_MERGE_TAG = "tag:yaml.org,2002:merge"


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def read_bytes(path, what: str = "an input file") -> bytes:
    """The bytes of a regular file, at most ``max_file_bytes`` of them; ``ValueError`` (one
    line naming the file) for a missing, unreadable, special or oversized file."""
    p = Path(path)
    limit = _limits.current().max_file_bytes
    try:
        # O_NONBLOCK: opening a FIFO for reading must not wait for a writer; the mode check
        # below then refuses it. fstat is on the open file, so a swapped symlink cannot slip by.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ValueError(f"{p}: no such file or directory") from None
    except IsADirectoryError:
        raise ValueError(f"{p}: is a directory, expected a file") from None
    except OSError as exc:
        raise ValueError(f"{p}: cannot read ({exc.strerror or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ValueError(f"{p}: is a directory, expected a file")
        if not stat.S_ISREG(mode):
            raise ValueError(f"{p}: not a regular file ({_file_type(mode)}); expected {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ValueError(f"{p}: larger than {limit:,} bytes (limits.max_file_bytes)")
        return b"".join(chunks)
    except OSError as exc:
        raise ValueError(f"{p}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def decode(data: bytes, source: str) -> str:
    """UTF-8 text without a leading byte-order mark; ``ValueError`` naming the byte otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{_at(source)}not UTF-8 text (byte {exc.start})") from None
    return text[1:] if text.startswith(_BOM) else text


def read_text(path, what: str = "an input file") -> str:
    """A regular file's UTF-8 text (see ``read_bytes``); a byte-order mark is dropped."""
    return decode(read_bytes(path, what), str(path))


# --------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------
class _Loader(_BASE_LOADER):
    """The safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            own = [k for k, _ in node.value if k.tag != _MERGE_TAG]
            seen = {}
            for key_node in own:
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           "found an unhashable key", key_node.start_mark) from None
                if first is not key_node:
                    raise ConstructorError(None, None, f"duplicate key {_shown(key)} (first "
                                           f"given{_where(first.start_mark)})",
                                           key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _shown(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _at(source: str | None) -> str:
    return f"{source}: " if source else ""


def _where(mark) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _refuse(source: str | None, problem: str, event) -> None:
    raise ValueError(f"{_at(source)}{problem}{_where(event.start_mark)}")


_LIMIT_OF = {"documents": "max_objects", "levels of nesting": "max_yaml_depth"}


def _at_most(count: int, most: int, what: str, source: str | None, event) -> None:
    if count > most:
        _refuse(source, f"more than {most:,} {what} (limits.{_LIMIT_OF[what]})", event)


def _check_events(text: str, source: str, lim: _limits.Limits) -> None:
    """One pass over the parser's events (no tree is built, no recursion): depth, document
    count and alias expansion within the limits. libyaml's composer recurses in C per level,
    so depth must be known before it runs."""
    loader = _BASE_LOADER(text)
    try:
        depth = documents = 0
        budget = max(len(text), 10_000)   # nodes the aliases may expand to in all
        expanded = 0
        sizes: dict[str, int] = {}        # anchor -> nodes under it (aliases counted expanded)
        stack: list[list] = []            # open collections: [anchor, nodes so far]
        while True:
            event = loader.get_event()
            if event is None:
                break
            if isinstance(event, DocumentStartEvent):
                documents += 1
                _at_most(documents, lim.max_objects, "documents", source, event)
                sizes.clear()
                continue
            if not isinstance(event, (NodeEvent, CollectionEndEvent)):
                continue
            if isinstance(event, CollectionStartEvent):
                depth += 1
                _at_most(depth, lim.max_yaml_depth, "levels of nesting", source, event)
                stack.append([event.anchor, 1])
                continue
            if isinstance(event, CollectionEndEvent):
                depth -= 1
                anchor, size = stack.pop()
                if anchor is not None:
                    sizes[anchor] = size
            else:
                size = sizes.get(event.anchor, 1) if isinstance(event, AliasEvent) else 1
                if isinstance(event, AliasEvent):
                    expanded += size
                    if expanded > budget:
                        _refuse(source, f"aliases expand to more than {budget:,} nodes", event)
                elif event.anchor is not None:
                    sizes[event.anchor] = 1
            if stack:
                stack[-1][1] += size
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(getattr(exc, "problem", "")):
            # libyaml >= 0.2.6 scans flow collections ahead and stops at its own depth limit
            # before the events reach the check above: the same refusal, in the same words.
            raise ValueError(f"{_at(source)}more than {lim.max_yaml_depth:,} levels of nesting "
                             f"(limits.max_yaml_depth){_where(exc.problem_mark)}") from None
        raise ValueError(yaml_error(exc, source)) from None
    finally:
        loader.dispose()


def yaml_error(exc: yaml.YAMLError, source: str) -> str:
    """One line for a PyYAML error: the source, the problem and where it is."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context and context != problem else problem
    return f"{_at(source)}invalid YAML{_where(mark)}: {detail}"


def load_yaml(text: str, source: str | None = None) -> list:
    """The non-empty documents of a YAML or JSON text, checked as the module docstring says;
    errors start with ``source:`` when a source is named."""
    if isinstance(text, bytes):
        text = decode(text, source)
    if text.startswith(_BOM):
        text = text[1:]
    lim = _limits.current()
    _check_events(text, source, lim)
    loader = _Loader(text)
    try:
        docs = []
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
        return docs
    except yaml.YAMLError as exc:
        raise ValueError(yaml_error(exc, source)) from None
    finally:
        loader.dispose()


def check_items(count: int, source: str) -> None:
    """Refuse a list of more than ``max_objects`` objects (a ``kind: List`` and the like)."""
    lim = _limits.current().max_objects
    if count > lim:
        raise ValueError(f"{_at(source)}{count:,} objects, more than {lim:,} (limits.max_objects)")


def flatten_list(doc, where: str) -> list:
    """The items of a ``List`` / ``<Kind>List`` object (``kubectl get -o yaml|json``, the API's
    typed lists, whose items carry no ``kind``: they take the list's kind without ``List``), or
    ``[doc]`` for anything else; at most ``max_objects`` items."""
    if not isinstance(doc, dict):
        return [doc]
    kind = doc.get("kind")
    if not (isinstance(kind, str) and kind.endswith("List") and "items" in doc):
        return [doc]
    items = doc.get("items") or []
    if not isinstance(items, list):
        raise ValueError(f"{where}: items: expected a list, got {type(items).__name__}")
    check_items(len(items), where)
    item_kind = kind[: -len("List")] or None
    out = []
    for j, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{where}: items[{j}]: expected a mapping, got "
                             f"{type(item).__name__}")
        if item_kind and "kind" not in item:
            item = {"kind": item_kind, **item}
        out.append(item)
    return out


__all__ = ["read_bytes", "read_text", "decode", "load_yaml", "yaml_error", "check_items",
           "flatten_list", "C_LOADER"]
