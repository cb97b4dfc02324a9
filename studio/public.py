"""Text any client may read: error messages and status reasons carry no server paths."""
from __future__ import annotations

import re

_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"/]+/)+([^\s'\"/]*)")


def public_message(message: str) -> str:
    """A message safe to show anyone: absolute server paths cut to their last part."""
    return _SERVER_PATH.sub(lambda m: m.group(1) or "a server folder", str(message))
