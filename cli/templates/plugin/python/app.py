"""{{name}}: a Vellum plugin that replaces every match of one pattern (by default employee
ids such as `EMP-123456`) in an event's payload strings and subject.

Configuration (JSON, optional): {"pattern": "<regex>", "replacement": "[EMPLOYEE-ID]"}.
`vellum plugin build` turns this module into a component with componentize-py.
"""

import json
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

DEFAULT_PATTERN = r"\bEMP-\d{6}\b"
DEFAULT_REPLACEMENT = "[EMPLOYEE-ID]"
KNOWN_KEYS = {"pattern", "replacement"}

# Set by configure; the host configures every fresh instance before its first apply.
_pattern = None
_replacement = DEFAULT_REPLACEMENT


def _scrub(value):
    """Rewrites every string inside a JSON value, keeping keys and structure."""
    if isinstance(value, str):
        return _pattern.sub(lambda _: _replacement, value)
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
        except (re.error, TypeError) as e:
            raise Err(f"invalid configuration: `pattern`: {e}")
        _replacement = str(settings.get("replacement", DEFAULT_REPLACEMENT))
        host.log(host.LogLevel.DEBUG, f"replacing {_pattern.pattern}")

    def apply(self, events):
        verdicts = []
        for event in events:
            if _pattern is None:
                verdicts.append(types.Verdict_Reject("plugin used before configure"))
                continue
            try:
                payload = json.loads(event.payload)
            except ValueError as e:
                # A payload that cannot be inspected must not pass unexamined.
                verdicts.append(types.Verdict_Reject(f"payload is not JSON: {e}"))
                continue
            scrubbed = _scrub(payload)
            subject = None if event.subject is None else _scrub(event.subject)
            if scrubbed == payload and subject == event.subject:
                # Unchanged: nothing is copied back to the host.
                verdicts.append(types.Verdict_Pass())
                continue
            event.payload = json.dumps(scrubbed, separators=(",", ":"), ensure_ascii=False)
            event.subject = subject
            verdicts.append(types.Verdict_Keep(event))
        return verdicts
