"""`{{name}}`: a Weir processor plugin in Python, built into a WebAssembly
component by componentize-py (`weir plugin build`)::

    [processors.{{ident}}]
    type = "wasm"
    inputs = ["otlp"]
    path = "{{name}}/{{name}}.wasm"
    config = { tag = "{{name}}" }

The contract is the WIT package in ``wit/`` (world ``processor``). The
batch given to ``process`` stays in Weir; its methods (``read_ints``,
``read_strings``, ``write_strings``, ``set_attribute``, ``drop_rows``, ...)
move whole columns. A ``none`` is ``None``. Return normally for ``ok``;
raise ``Err(types.Error_InvalidArgument("why"))`` (or any ``error`` case)
for ``err``.
"""

import json

import wit_world
from wit_world.imports import batch, types
from componentize_py_types import Err

# Module state lives as long as the instance (componentize-py makes a new
# `WitWorld` object for every call).
_tag = "{{name}}"


class WitWorld(wit_world.WitWorld):
    """The plugin's exports."""

    def init(self, config: str) -> types.Settings:
        """``config`` is the pipeline's ``config`` table as JSON text."""
        global _tag
        tag = json.loads(config).get("tag", _tag)
        if not isinstance(tag, str) or not tag:
            raise Err(types.Error_InvalidArgument("`tag` must be a non-empty string"))
        _tag = tag
        return types.Settings(tick_every_ms=None)

    def process(self, input: batch.Batch) -> None:
        """Called for every batch: logs, spans or metric points."""
        # Drop rows by a column's value, for example TRACE logs:
        #   drop = [s is not None and 1 <= s <= 4 for s in input.read_ints("severity_number")]
        #   if input.drop_rows(drop) == 0: return
        input.set_attribute(types.AttributeSet.RECORD, "processed_by", [_tag] * input.num_rows())

    def tick(self, now: int) -> None:
        """Called every ``tick_every_ms``, if ``init`` asks for it."""
