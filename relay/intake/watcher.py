"""Live reload of mapping files: a light watcher thread per process, plus SIGHUP.

The watcher polls a fingerprint of the mappings directory (names plus mtime,
size and inode of each file with symlinks resolved) about once a second. That
sees in-place edits, editors that save by renaming a new file over the old one,
and Kubernetes ConfigMap updates (an atomic swap of the ``..data`` symlink),
with no file-notification dependency. Only files whose stamp changed are
compiled again; a file that no longer compiles keeps its last good version
serving while its problems are reported.
"""
from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Iterable, Mapping

from relay.intake.registry import ReloadReport, SourceRegistry
from relay.mapping.source import Source
from relay.pii import register_secret

log = logging.getLogger("relay.reload")

POLL_INTERVAL_S = 1.0


class MappingWatcher:
    """Polls the registry's directory and reloads it when something changed."""

    def __init__(self, registry: SourceRegistry, env: Mapping[str, str], *,
                 interval_s: float = POLL_INTERVAL_S) -> None:
        self.registry = registry
        self.env = env
        self.interval_s = interval_s
        self._fingerprint = registry.fingerprint()
        self._forced = threading.Event()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._watch, name="relay-mapping-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def request_reload(self) -> None:
        """Reload every file on the next turn; safe to call from a signal handler."""
        self._forced.set()
        self._wake.set()

    def check(self) -> ReloadReport:
        """One turn of the watcher: reload if forced or if the directory's fingerprint moved."""
        forced = self._forced.is_set()
        self._forced.clear()
        if not forced and self.interval_s <= 0:
            return ReloadReport()
        fingerprint = self.registry.fingerprint()
        if not forced and fingerprint == self._fingerprint:
            return ReloadReport()
        self._fingerprint = fingerprint
        report = self.registry.reload(force=forced)
        announce(report, self.registry, self.env)
        return report

    def _watch(self) -> None:
        while not self._stopping.is_set():
            try:
                self.check()
            except Exception:  # the watcher must outlive any odd file
                log.exception("reloading the mappings failed; the loaded sources keep serving")
            self._wake.wait(self.interval_s if self.interval_s > 0 else None)
            self._wake.clear()


def announce(report: ReloadReport, registry: SourceRegistry, env: Mapping[str, str]) -> None:
    """Log, count and secure what a reload changed."""
    for name in report.added + report.updated:
        source = registry.get(name)
        if source is not None:
            register_source_secrets(source, env)
            log.info("mapping %s %s", name, "loaded" if name in report.added else "reloaded",
                     extra={"source": name, "version": getattr(source, "version", ""),
                            "event": "mapping_loaded"})
    for name in report.removed:
        log.info("mapping %s removed", name, extra={"source": name, "event": "mapping_removed"})
    for name in report.broken:
        report_broken(registry, name)


def report_broken(registry: SourceRegistry, name: str) -> None:
    serving = registry.get(name)
    problems = [str(problem) for problem in registry.problems_for(name)]
    log.error("mapping %s has errors; %s", name,
              f"version {serving.version} keeps serving" if serving else "the source is not served",
              extra={"source": name, "event": "mapping_reload_error", "problems": problems,
                     "serving_version": getattr(serving, "version", None)})
    count_reload_error(name)


def count_reload_error(source: str) -> None:
    try:
        from relay.metrics import MAPPING_RELOAD_ERRORS
    except ImportError:  # metrics are optional for the reload to work
        return
    MAPPING_RELOAD_ERRORS.labels(source).inc()


def register_source_secrets(source: Source, env: Mapping[str, str]) -> None:
    """Teach the log scrubber the values of every secret this source names."""
    for name in secret_env_names(source):
        register_secret(env.get(name))


def register_all_secrets(registry: SourceRegistry, env: Mapping[str, str]) -> None:
    for source in registry.sources().values():
        register_source_secrets(source, env)


def secret_env_names(source: Any) -> set[str]:
    names: set[str] = set()
    inbound = getattr(source, "inbound", None)
    if inbound is not None and hasattr(inbound, "secret_envs"):
        names.update(inbound.secret_envs())
    for plan in plans_of(source):
        target = getattr(plan, "target", None)
        names.update(getattr(target, "secrets", {}).values())
    return names


def plans_of(source: Any) -> Iterable[Any]:
    plan = getattr(source, "plan", None)
    if plan is not None:
        yield plan
    for route in getattr(source, "routes", ()):
        yield route.plan


def start_watching(registry: SourceRegistry, env: Mapping[str, str], *,
                   interval_s: float = POLL_INTERVAL_S) -> MappingWatcher | None:
    """Start one process's watcher (gunicorn: once per worker); None when there is no directory.

    ``interval_s`` 0 watches nothing by itself: only SIGHUP reloads.
    """
    if registry.directory is None:
        return None
    watcher = MappingWatcher(registry, env, interval_s=interval_s)
    watcher.start()
    log.info("watching %s for mapping changes", registry.directory, extra={"event": "mapping_watch_started"})
    return watcher


def reload_on_sighup(watcher: MappingWatcher) -> None:
    """``kill -HUP <worker>`` reloads the mappings in that worker (must run in the main thread).

    A HUP to the gunicorn master restarts its workers instead, and each new worker
    loads the mappings afresh, so both reload.
    """
    signal.signal(signal.SIGHUP, lambda signum, frame: watcher.request_reload())
