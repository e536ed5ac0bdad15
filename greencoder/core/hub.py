"""Where a model or adapter reference points: a local folder or a Hugging Face hub id.

Users name either. When the hub cannot be reached, transformers retries for ~25 s before failing;
a quick TCP probe first lets us go straight to the local cache (`local_files_only`) and say
plainly that the hub is unreachable.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

HUB_PROBE_TIMEOUT_S = 3.0


def looks_like_path(reference: str) -> bool:
    """True when `reference` is meant as a filesystem path rather than a hub id like `org/name`."""
    if os.path.exists(os.path.expanduser(reference)):
        return True
    if reference.startswith(("/", "./", "../", "~", "\\")) or reference.count("/") > 1:
        return True  # hub ids are `name` or `org/name`
    return os.sep == "\\" and "\\" in reference


def hub_offline_requested() -> bool:
    """The user switched the hub off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    return any(os.environ.get(name, "").lower() in {"1", "true", "yes", "on"} for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


@functools.lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """Can we open a TCP connection to the hub endpoint within a few seconds? (Cached per process.)"""
    if hub_offline_requested():
        return False
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # behind a proxy a direct probe proves nothing: let the hub client try
    url = urlparse(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=HUB_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def expand(reference: str) -> Path:
    return Path(os.path.expanduser(reference))
