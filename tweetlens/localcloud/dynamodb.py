"""DynamoDB fixes for moto: one request at a time, and a cheap rollback snapshot per transaction.

moto's ``TransactWriteItems`` deep-copies the target table for its rollback, once per item of
the transaction, while other threads of the server write to the same table: the copy can fail
("dictionary changed size during iteration", an InternalServerError to the caller) and its
cost grows with the table times the items. Requests are serialised here, as they are consistent
in DynamoDB, and a transaction snapshots each table once.

That one snapshot still copied the whole table: with a table that grows by an item per
transaction (a results table), n transactions cost O(n^2) item copies — the local cloud slowed
down as its tables filled. The snapshot is now copy-on-write: a new ``Table`` object sharing
every item the transaction does not name, with deep copies of the items it names (a
transaction writes only the keys it names, so nothing shared can change) and of the stream
shard (a rolled-back write must not leave a stream record). Rollback swaps it in as before.
A transaction whose keys cannot be read (malformed; moto will refuse it) gets the full copy.

A ``Query`` of the table's own key (no index) walked and sorted every item of the table to
keep those with the hash key asked for: O(n log n) per query, which made each stored result
slower than the last. It now reads that hash key's items only (``query_by_hash_key``); moto
then sorts, filters, pages and projects them exactly as before. Index queries are unchanged.

A ``Scan`` with ``Select=COUNT`` deep-copied every item it matched (moto copies what it will
return, so a projection cannot touch the table) only to count them: with a results table of
1,000 items carrying their labels, each count cost about as much as the pipeline's work for
dozens of images. A counting scan now compares the stored items themselves; what it
answers (``Count``, ``ScannedCount``, ``LastEvaluatedKey``) is unchanged, and a scan that
returns items still copies them.

An ``UpdateItem`` (alone or in a transaction) tokenised and parsed its ``UpdateExpression`` twice,
once to check the placeholders it names and once to run it: the same few expressions, on
every write of the pipeline (with the validator that follows, about 8 % of the emulator's GIL
time in a bench of EXPRESS at concurrency 10). The parse of an expression string is now kept
(``UpdateExpressionParser.make``, up to ``PARSED_EXPRESSIONS`` strings). Nothing changes the
kept tree: moto reads it for the placeholders, and its validator works on a deep copy of it
(which it makes anyway), so every update still gets its own tree to resolve and run, and an
expression moto cannot parse still fails each time with moto's error.

That validator starts with ``copy.deepcopy`` of the tree (moto's own tree classes have no copy
hook, so ``deepcopy`` reduces, memoises and rebuilds every node generically): about as much
CPU again as the checks that follow. ``copy_tree`` makes the same copy for the tree's nodes
directly: a new object of the same class per node with each attribute copied (children
lists element by element, so every ``parent`` points into the new tree, and a node reached
twice is copied once), atoms shared as ``deepcopy`` shares them, and anything else handed to
``copy.deepcopy`` with the same memo. Objects that are not moto's plain nodes (the
``list_append`` operand, a ``DynamoType``) are copied by ``copy.deepcopy`` as before.

The validator then walks the tree once per check (ten of them for an update), and at every
node each walk asked its ``nodes_to_be_processed()``, which moto calls a cached accessor but
which builds the check's processing map (a dict of bound methods) and a tuple of its keys
anew: about a third of the validator's time in a bench of EXPRESS at concurrency 10
(``py-spy --gil``). ``install_node_types_once`` keeps that tuple on the check for its life
(one update's validation: each check is made for one update). The map is a literal in every
check of moto's, so its keys cannot differ between two calls; what a node is processed by,
and in which order, is unchanged.
"""

from __future__ import annotations

import copy
import functools
import threading
import types
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Final

import moto.dynamodb.models as dynamodb_models
import moto.dynamodb.models.table as table_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing import validators
from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]
    DepthFirstTraverser,
    Node,
)
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.responses import DynamoHandler

from tweetlens.localcloud._patching import PatchSet

SERIALISED_OPERATIONS: Final = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "batch_get_item",
    "batch_write_item",
    "query",
    "scan",
    "transact_get_items",
    "transact_write_items",
)


# Distinct update expressions whose parse is kept: an application has a handful.
PARSED_EXPRESSIONS: Final = 512

# Table name → the keys (hash value, range value or None) a transaction writes in it.
TouchedKeys = dict[str, set[tuple[DynamoType, DynamoType | None]]]


class _SnapshotOnce:
    """``copy.deepcopy`` that, inside a transaction, copies each object once, and a table only
    as far as the transaction's keys reach (``snapshot_table``)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def deepcopy(self, obj: Any, memo: dict[int, Any] | None = None) -> Any:
        cache: dict[int, Any] | None = getattr(self._local, "cache", None)
        if cache is None:
            return copy.deepcopy(obj, memo)
        if id(obj) not in cache:
            touched: TouchedKeys | None = self._local.touched
            if isinstance(obj, Table) and touched is not None and obj.name in touched:
                cache[id(obj)] = snapshot_table(obj, touched[obj.name])
            else:
                cache[id(obj)] = copy.deepcopy(obj, memo)
        return cache[id(obj)]

    def transaction(self, run: Callable[[], Any], touched: TouchedKeys | None = None) -> Any:
        self._local.cache = {}
        self._local.touched = touched
        try:
            return run()
        finally:
            self._local.cache = None
            self._local.touched = None


def snapshot_table(table: Table, keys: set[tuple[DynamoType, DynamoType | None]]) -> Table:
    """A rollback copy of ``table`` for a transaction writing only ``keys``.

    Items are stored as ``items[hash]`` (no range key) or ``items[hash][range]``; moto's writes
    replace or mutate only the item at the key written, and add records to the stream shard.
    """
    snapshot = copy.copy(table)
    items = defaultdict(dict, table.items)
    copied: set[DynamoType] = set()
    for hash_value, range_value in keys:
        if hash_value not in table.items:
            continue
        if range_value is None:
            items[hash_value] = copy.deepcopy(table.items[hash_value])
            continue
        if hash_value not in copied:
            # A fresh dict of this hash's items, so that puts and deletes under it stay out
            # of the snapshot; made once, however many of its range keys are written.
            items[hash_value] = dict(table.items[hash_value])
            copied.add(hash_value)
        if range_value in items[hash_value]:
            items[hash_value][range_value] = copy.deepcopy(items[hash_value][range_value])
    snapshot.items = items
    # The shard points back at its table: the copy points at the snapshot.
    snapshot.stream_shard = copy.deepcopy(table.stream_shard, {id(table): snapshot})
    return snapshot


def touched_keys(
    backend: DynamoDBBackend, transact_items: list[dict[str, Any]]
) -> TouchedKeys | None:
    """The keys each table's items are written at, or None when they cannot all be read."""
    touched: TouchedKeys = {}
    try:
        for entry in transact_items:
            _, operation = next(iter(entry.items()))
            table = backend.tables[operation["TableName"]]
            attributes = operation["Item"] if "Item" in operation else operation["Key"]
            hash_value = DynamoType(attributes[table.hash_key_attr])
            range_value = (
                None
                if table.range_key_attr is None
                else DynamoType(attributes[table.range_key_attr])
            )
            touched.setdefault(table.name, set()).add((hash_value, range_value))
    except (KeyError, TypeError, AttributeError, StopIteration):
        return None
    return touched


def install(patches: PatchSet) -> None:
    """Serialise moto's DynamoDB data-plane requests; snapshot a transaction's tables once."""
    lock = threading.RLock()
    for operation in SERIALISED_OPERATIONS:
        patches.replace(
            DynamoHandler, operation, _serialised(getattr(DynamoHandler, operation), lock)
        )
    snapshots = _SnapshotOnce()
    shim = types.SimpleNamespace(**{name: getattr(copy, name) for name in ("copy", "error")})
    shim.deepcopy = snapshots.deepcopy
    patches.replace(dynamodb_models, "copy", shim)
    original: Callable[..., Any] = DynamoDBBackend.transact_write_items

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
        return snapshots.transaction(
            lambda: original(backend, transact_items), touched_keys(backend, transact_items)
        )

    patches.replace(DynamoDBBackend, "transact_write_items", transact_write_items)
    patches.replace(Table, "query", query_by_hash_key(Table.query))
    install_count_without_copies(patches)
    install_parsed_update_expressions(patches)
    patches.replace(validators, "deepcopy", copy_tree)
    install_node_types_once(patches)


def install_node_types_once(patches: PatchSet) -> None:
    """A validator check builds the node types it processes once, not at every node
    (module docstring)."""
    node_types: Callable[[Any], tuple[type, ...]] = DepthFirstTraverser.nodes_to_be_processed

    def nodes_to_be_processed(check: Any) -> tuple[type, ...]:
        kept: tuple[type, ...] | None = check.__dict__.get("_localcloud_node_types")
        if kept is None:
            kept = node_types(check)
            check.__dict__["_localcloud_node_types"] = kept
        return kept

    patches.replace(DepthFirstTraverser, "nodes_to_be_processed", nodes_to_be_processed)


def install_parsed_update_expressions(patches: PatchSet) -> Callable[[str], Any]:
    """``UpdateExpressionParser.make`` parses each expression string once (module docstring);
    returns the cached parse (its ``cache_info()`` says how often it was reused)."""
    make: Callable[[str], Any] = UpdateExpressionParser.make

    @functools.lru_cache(maxsize=PARSED_EXPRESSIONS)
    def parsed(expression: str) -> Any:
        return make(expression)

    def cached_make(cls: type, expression: Any) -> Any:
        if cls is not UpdateExpressionParser or not isinstance(expression, str):
            return make.__func__(cls, expression)  # type: ignore[attr-defined]
        return parsed(expression)

    patches.replace(UpdateExpressionParser, "make", classmethod(cached_make))
    return parsed


# What ``copy.deepcopy`` returns as it is (its atomic types).
_ATOMS: Final = frozenset({type(None), bool, int, float, complex, str, bytes, type, range})


@functools.cache
def _plain_node_class(cls: Any) -> bool:
    """A node class ``deepcopy`` copies generically: its ``__dict__``, no hook of its own."""
    hooks: tuple[str, ...] = ("__slots__", "__deepcopy__", "__copy__", "__reduce_ex__")
    hooks += ("__reduce__", "__getstate__", "__setstate__", "__getnewargs_ex__", "__getnewargs__")
    return issubclass(cls, Node) and not any(
        hook in vars(base) for base in cls.__mro__ if base is not object for hook in hooks
    )


def copy_tree(obj: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy`` for moto's expression trees, node by node (module docstring)."""
    if memo is None:
        memo = {}
    kind: Any = type(obj)
    if kind in _ATOMS:
        return obj
    if id(obj) in memo:
        return memo[id(obj)]
    if kind is list:
        new_list: list[Any] = []
        memo[id(obj)] = new_list
        new_list.extend(item if type(item) in _ATOMS else copy_tree(item, memo) for item in obj)
        return new_list
    if not _plain_node_class(kind):
        return copy.deepcopy(obj, memo)
    node = object.__new__(kind)
    memo[id(obj)] = node
    # The node's own __dict__, read in place: no temporary whose id could be reused while
    # the memo lives (why deepcopy keeps its reductions alive).
    node.__dict__.update(
        {
            name: value if type(value) in _ATOMS else copy_tree(value, memo)
            for name, value in vars(obj).items()
        }
    )
    return node


def install_count_without_copies(patches: PatchSet) -> None:
    """``Scan`` with ``Select=COUNT`` counts the stored items instead of copies of them."""
    counting = threading.local()
    deepcopy = copy.deepcopy

    def deepcopy_unless_counting(obj: Any, memo: dict[int, Any] | None = None) -> Any:
        # Nothing a counting scan matches leaves the emulator, so nothing can change it.
        return obj if getattr(counting, "active", False) else deepcopy(obj, memo)

    # table.py's own name for the copy module: every copy it makes goes through the shim.
    shim = types.SimpleNamespace(**{name: getattr(copy, name) for name in ("copy", "error")})
    shim.deepcopy = deepcopy_unless_counting
    patches.replace(table_models, "copy", shim)
    scan: Callable[[Any], Any] = DynamoHandler.scan

    @functools.wraps(scan)
    def counting_scan(response: Any) -> Any:
        counting.active = response.body.get("Select") == "COUNT"
        try:
            return scan(response)
        finally:
            counting.active = False

    patches.replace(DynamoHandler, "scan", counting_scan)


def query_by_hash_key(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Table.query`` that, for the table's own key, hands moto a view of the table holding
    only the queried hash key's items (``items[hash]``, as moto stores them), so its scan
    for that key and its sort cover those alone. What it returns is what moto returns."""

    @functools.wraps(original)
    def query(table: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name") if len(args) < 7 else args[6]
        if index_name or not isinstance(hash_key, DynamoType):
            return original(table, hash_key, *args, **kwargs)
        view = copy.copy(table)
        view.items = defaultdict(dict)
        if hash_key in table.items:
            view.items[hash_key] = table.items[hash_key]
        return original(view, hash_key, *args, **kwargs)

    return query


def _serialised(handler: Callable[[Any], Any], lock: threading.RLock) -> Callable[[Any], Any]:
    @functools.wraps(handler)
    def serialised(response: Any) -> Any:
        with lock:
            return handler(response)

    return serialised
