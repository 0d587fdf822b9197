"""Request body parsers for the API."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with deeply nested documents refused as a 400.

    ``json.loads`` recurses once per nesting level, so ``[[[[...]]]]`` ten
    thousand levels deep raises ``RecursionError``, which DRF does not catch
    and which would otherwise become a 500.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        try:
            return super().parse(stream, media_type=media_type, parser_context=parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply") from None
