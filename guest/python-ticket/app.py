"""A Vellum plugin written in Python: redacts internal ticket ids (for example `INC-123456`)
from every string of an event's payload and from its subject.

Configuration (JSON, optional): {"pattern": "<regex>", "replacement": "[TICKET]"}.
Built into a component with componentize-py against the same WIT world as the Rust plugins:
    componentize-py -d ../../wit -w plugin componentize app -o python-ticket.wasm
"""

import json
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

DEFAULT_PATTERN = r"\b(?:INC|TICKET|JIRA|SR)-\d{3,}\b"
KNOWN_KEYS = {"pattern", "replacement"}

# Set by configure; a fresh instance is always configured before its first apply.
_pattern = re.compile(DEFAULT_PATTERN)
_replacement = "[TICKET]"


def _scrub(value):
    """Rewrites every string inside a JSON value, keeping keys and structure."""
    if isinstance(value, str):
        return _pattern.sub(_replacement, value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


class Filter(exports.Filter):
    def configure(self, config: str) -> None:
        global _pattern, _replacement
        try:
            settings = json.loads(config) if config.strip() else {}
        except ValueError as e:
            raise Err(f"invalid configuration: not JSON: {e}")
        if not isinstance(settings, dict):
            raise Err("invalid configuration: expected a JSON object")
        unknown = sorted(set(settings) - KNOWN_KEYS)
        if unknown:
            raise Err(f"invalid configuration: unknown key `{unknown[0]}` (known: pattern, replacement)")
        try:
            _pattern = re.compile(settings.get("pattern", DEFAULT_PATTERN))
        except re.error as e:
            raise Err(f"invalid configuration: `pattern`: {e}")
        _replacement = str(settings.get("replacement", "[TICKET]"))
        host.log(host.LogLevel.DEBUG, f"redacting tickets matching {_pattern.pattern}")

    def apply(self, events):
        verdicts = []
        for event in events:
            try:
                payload = json.loads(event.payload)
            except ValueError as e:
                verdicts.append(types.Verdict_Reject(f"payload is not JSON: {e}"))
                continue
            event.payload = json.dumps(_scrub(payload), separators=(",", ":"), ensure_ascii=False)
            if event.subject is not None:
                event.subject = _pattern.sub(_replacement, event.subject)
            verdicts.append(types.Verdict_Keep(event))
        return verdicts
