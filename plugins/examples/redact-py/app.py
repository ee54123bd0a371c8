"""Drops DEBUG and lower logs and masks the digits of log bodies.

The Python twin of the ``redact-rust`` example, built into a component of
the ``weir:plugin`` world ``processor`` by componentize-py::

    [processors.redact]
    type = "wasm"
    inputs = ["otlp.logs"]
    path = "redact_py.wasm"
    config = { mask = "#" }   # the character digits become; default "#"

Severity numbers 1 to 8 are TRACE and DEBUG; 0 (unspecified) is kept.

How the contract looks from Python: ``wit_world`` is generated from the WIT
package; the world's exports are the methods of the class ``WitWorld``
below. The batch handed to ``process`` is a ``wit_world.imports.batch.Batch``
with its methods in snake_case (``read_ints``, ``drop_rows``, ...); a
``none`` is ``None``. A ``result`` export returns its ``ok`` value and raises
``Err(error)`` for its ``err``; an import that returns ``err`` raises
``Err(error)``, which, let through, becomes this export's ``err`` as it is.
"""

import json
import re

import wit_world
from wit_world.imports import batch, types
from componentize_py_types import Err

_DIGIT = re.compile(r"[0-9]")
_DIGIT_CHARS = "0123456789"

# The character digits become; set by `init`. A module global, not an
# attribute: componentize-py makes a new `WitWorld` for each export call,
# while the module lives as long as the instance.
_mask = "#"


def _ascii_table(mask: str) -> bytes:
    """A ``bytes.translate`` table turning ASCII digits into ``mask``."""
    return bytes.maketrans(_DIGIT_CHARS.encode(), mask.encode() * len(_DIGIT_CHARS))


def _invalid_argument(message: str) -> Err:
    return Err(types.Error_InvalidArgument(message))


class WitWorld(wit_world.WitWorld):
    """The plugin's exports."""

    def init(self, config: str) -> types.Settings:
        """``config`` is the plugin's ``config`` table as JSON text (``{}``
        when the pipeline gives none). Its one setting, ``mask``, must be a
        one-character string."""
        global _mask
        try:
            parsed = json.loads(config)
        except ValueError as e:
            raise _invalid_argument(f"config is not JSON: {e}")
        if not isinstance(parsed, dict):
            raise _invalid_argument("config must be a JSON object")
        if "mask" in parsed:
            mask = parsed["mask"]
            # One character is one Unicode code point, as a Rust `char`.
            if not isinstance(mask, str) or len(mask) != 1:
                raise _invalid_argument("`mask` must be a one-character string")
            _mask = mask
        else:
            _mask = "#"
        return types.Settings(tick_every_ms=None)

    def process(self, input: batch.Batch) -> None:
        """Drops TRACE and DEBUG rows, then masks the digits of the bodies
        left."""
        severities = input.read_ints("severity_number")
        drop = [s is not None and 1 <= s <= 8 for s in severities]
        rows = len(drop)
        if any(drop):
            rows = input.drop_rows(drop)
        if rows == 0:
            return

        if len(_mask.encode()) == 1:
            # An ASCII mask replaces one byte by one byte: translate the
            # whole body column at once and keep its offsets.
            text = input.read_text("body")
            masked = text.data.translate(_ascii_table(_mask))
            if masked != text.data:
                input.write_text(
                    "body",
                    batch.TextColumn(data=masked, offsets=text.offsets, nulls=text.nulls),
                )
            return

        # Any other mask changes the values' lengths: value by value.
        bodies = input.read_strings("body")
        table = {ord(c): _mask for c in _DIGIT_CHARS}
        changed = 0
        for i, body in enumerate(bodies):
            if body is not None and _DIGIT.search(body):
                bodies[i] = body.translate(table)
                changed += 1
        if changed:
            input.write_strings("body", bodies)

    def tick(self, now: int) -> None:
        """Never called (``tick-every-ms`` is none); the world requires
        it."""
