"""The last mapping of each source that compiled, kept on disk so a restart still has it.

A broken edit keeps the previous version serving in a running worker (the registry
holds it in memory). A new worker, after a restart or a HUP to the gunicorn master,
has no previous version in memory: it takes the one kept here instead of answering
503, while ``/readyz`` and ``relay mappings lint`` keep reporting the broken file.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

from relay.mapping.lint import compile_file
from relay.mapping.source import Source

log = logging.getLogger("relay.reload")


class LastGood:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def path_of(self, name: str) -> Path:
        return self.directory / f"{name}.yaml"

    def remember(self, name: str, source_file: Path) -> None:
        """Keep the text of a file that just compiled; a failure to keep it only costs the fallback."""
        try:
            text = source_file.read_bytes()
            kept = self.path_of(name)
            if kept.is_file() and kept.read_bytes() == text:
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            # Several workers write the same file: each renames its own whole copy over it.
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.")
            with os.fdopen(handle, "wb") as out:
                out.write(text)
            os.replace(temporary, kept)
        except OSError as exc:
            log.warning("cannot keep the last good mapping of %s in %s: %s", name, self.directory,
                        exc.strerror, extra={"source": name, "event": "mapping_cache_error"})

    def recall(self, name: str) -> Source | None:
        """The source kept for ``name``, if one is kept and still compiles."""
        kept = self.path_of(name)
        if not kept.is_file():
            return None
        source, _ = compile_file(kept, env=None)
        return source

    def forget(self, name: str) -> None:
        with contextlib.suppress(OSError):
            self.path_of(name).unlink()
