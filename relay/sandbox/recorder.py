"""What the sandbox received and answered, kept in memory with secrets masked."""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Mapping

MASK = "***"
SECRET_PARAMS = frozenset({"lead_token", "schedule_lead_token", "offer_lead_token", "auth_token"})
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key",
                            "x-auth-token"})
LEAD_ID_HEADER = "X-Relay-Lead-Id"


def mask_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: (MASK if key in SECRET_PARAMS else value) for key, value in params.items()}


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key.lower() not in SECRET_HEADERS}


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._by_status: Counter[str] = Counter()
        self._accepted_ids: Counter[str] = Counter()
        self._accepted = 0
        self._replayed = 0

    def add(self, record: dict[str, Any]) -> None:
        status = record["answer"]["status"]
        with self._lock:
            record["seq"] = len(self._records) + 1
            self._records.append(record)
            self._by_status[str(status) if status is not None else "dropped"] += 1
            if record["answer"].get("fate") == "replayed":
                self._replayed += 1
            elif status is not None and 200 <= status < 300:
                self._accepted += 1
                if record.get("lead_id"):
                    self._accepted_ids[record["lead_id"]] += 1

    def since(self, seq: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._records[max(0, seq):])

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._by_status.clear()
            self._accepted_ids.clear()
            self._accepted = 0
            self._replayed = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "received": len(self._records),
                "accepted": self._accepted,
                "by_status": dict(self._by_status),
                "duplicates_accepted": sum(1 for n in self._accepted_ids.values() if n > 1),
                "distinct_leads_accepted": len(self._accepted_ids),
                "replayed": self._replayed,
            }
