"""Boolean words, read one way everywhere a mapping or a payload says yes or no."""
from __future__ import annotations

from typing import Any, Collection

# Trackdrive's own vocabulary for boolean parameters (its reference lists exactly these).
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def boolean_word(value: Any, true_words: Collection[str] = TRUE_WORDS,
                 false_words: Collection[str] = FALSE_WORDS) -> bool | None:
    """True or False for a boolean, 0/1 or a boolean word (any case, spaces around); else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in true_words:
            return True
        if word in false_words:
            return False
    return None
