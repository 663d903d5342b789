"""Small mapping files whose versions answer differently, so a reload is visible from outside."""
from __future__ import annotations

import os
from pathlib import Path

ENV = {"ACME_LEAD_TOKEN": "acme-lead-token-3f9e1d", "BETA_LEAD_TOKEN": "beta-lead-token-77c1"}

# v1 reads the phone from "phone": a lead that only has "tel" is refused (422).
V1 = """version: 1
trackdrive: {lead_token: "${ACME_LEAD_TOKEN}"}
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
"""

# v2 also reads "tel": the same lead is now accepted (202).
V2 = """version: 1
trackdrive: {lead_token: "${ACME_LEAD_TOKEN}"}
lead:
  caller_id: {path: [$.phone, $.tel], transform: phone, required: true}
"""

BROKEN = """version: 1
trackdrive: {lead_token: "${ACME_LEAD_TOKEN}"}
lead:
  caller_id: {path: $.phone, transform: no_such_transform, required: true}
"""

BETA = """version: 1
trackdrive: {lead_token: "${BETA_LEAD_TOKEN}"}
lead:
  caller_id: {path: $.phone, transform: phone, required: true}
"""

TEL_ONLY = {"tel": "(512) 555-0147"}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def save_by_rename(path: Path, text: str) -> None:
    """What editors do: write a temporary file, then rename it over the original."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def configmap_layout(directory: Path, files: dict[str, str], generation: str) -> None:
    """Kubernetes' ConfigMap volume: files are links through ``..data``, a link swapped atomically."""
    real = directory / f"..{generation}"
    real.mkdir()
    for name, text in files.items():
        (real / name).write_text(text, encoding="utf-8")
    link = directory / "..data_tmp"
    link.symlink_to(real.name)
    os.replace(link, directory / "..data")
    for name in files:
        visible = directory / name
        if not visible.is_symlink():
            visible.symlink_to(Path("..data") / name)
