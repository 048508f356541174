"""Parse once: a state machine's definition and each JSONPath, for every execution after.

moto's interpreter parses the whole definition with its ANTLR grammar when an execution
starts (about 27 ms of CPU for tweetlens's four-state workflow), and ``jsonpath_ng`` builds a
new parser, LR tables included, for every path it evaluates (``$.message.url``, once per
state that reads it, per execution). In a 1,000-image bench the two took a fifth of the
emulator's time.

Both results are declarations, not state: an interpreter program keeps everything that
changes during an execution in that execution's ``Environment`` (its stack, heap and context
object), which is why moto's Map and Parallel states already run one parsed branch in many
threads at once; a JSONPath expression only reads the document it is given. Sharing one parse
between executions therefore changes no outcome. The one lazy value in a program, each
component's ``heap_key`` (a random id, the component's slot in an execution's heap), is drawn
before the program is shared, so two executions starting together cannot draw two.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, Final

from jsonpath_ng import parser as jsonpath_parser
from jsonpath_ng.ext import parser as jsonpath_ext_parser
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from tweetlens.localcloud._patching import PatchSet

# Definitions and paths are few (one per deployed machine, a few per state); the bounds only
# keep a long-lived process that deploys many machines from holding every one.
PROGRAMS_CACHED: Final = 64
PATHS_CACHED: Final = 4096


def install(patches: PatchSet) -> None:
    """Executions share their definition's parsed program; JSONPaths are parsed once."""
    programs = functools.lru_cache(maxsize=PROGRAMS_CACHED)(parse_program)

    def entrypoint(worker: Any) -> EvalComponent:
        program: EvalComponent = programs(
            worker._evaluation_details.state_machine_details.definition
        )
        return program

    patches.replace(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint)
    # Each module's own name for the parser: extract_json (input, parameters, intrinsics,
    # choices) uses jsonpath_ng.ext's, ResultPath jsonpath_ng's.
    patches.replace(
        json_path, "parse", functools.lru_cache(maxsize=PATHS_CACHED)(jsonpath_ext_parser.parse)
    )
    patches.replace(
        result_path, "parse", functools.lru_cache(maxsize=PATHS_CACHED)(jsonpath_parser.parse)
    )


def parse_program(definition: str) -> EvalComponent:
    """The interpreter's program for ``definition``, every component's heap key drawn."""
    program: EvalComponent = AmazonStateLanguageParser.parse(definition)[0]
    for component in _components(program):
        _ = component.heap_key
    return program


def _components(root: EvalComponent) -> Iterator[EvalComponent]:
    """Every component reachable from ``root`` through attributes, lists, tuples and dicts."""
    seen: set[int] = set()
    pending: list[Any] = [root]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, EvalComponent):
            yield value
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list | tuple | set | frozenset):
            pending.extend(value)
        elif hasattr(value, "__dict__") and type(value).__module__.startswith("moto."):
            pending.extend(vars(value).values())
