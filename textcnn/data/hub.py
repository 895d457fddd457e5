"""The Hugging Face Hub: the reader of a dataset that is neither a path nor in the data dir.

The one place ``datasets`` is imported (it takes seconds, so local files never pay for it). A
known name (``sst2``) is read from its closest Hub copy (:data:`textcnn.data.resolve.KNOWN`),
anything else shaped ``owner/name`` as that Hub id. Offline, or with the Hub's host out of
reach (:func:`hub_reachable`, which answers at once instead of after the Hub client's retries),
the error names both places looked in and the variable to set.

Example
-------
>>> import os
>>> os.environ["HF_HUB_OFFLINE"] = "1"
>>> read_hub("sst2", TaskConfig("sst2"), None)
Traceback (most recent call last):
textcnn.errors.DataError: dataset 'sst2' not found offline: looked in no local data dir (set \
--data-dir or $TEXTCNN_DATA_DIR) and on the Hugging Face Hub as 'SetFit/sst2' (Hub access is off)
>>> del os.environ["HF_HUB_OFFLINE"]
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from ..config import TaskConfig
from ..errors import DataError
from ..texts import check_text
from .resolve import KNOWN, META, SPLIT_NAMES, looks_like_hub_id

Columns = tuple[list, list, Path]  # (texts, raw labels, the split's name as a path)


def quiet_datasets():
    """``datasets``, its progress bars and log lines off (a failure is re-raised as one line)."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(logging.CRITICAL)
    return datasets


def read_hub(spec: str, task: TaskConfig, local: Path | None
             ) -> tuple[str, dict[str, Columns], list[str] | None]:
    """``(source, {split: (texts, raw labels, "hub:<id>/<split>")}, ClassLabel names or None)``
    of the Hub dataset ``spec`` names; ``local`` is where the data dir was looked in."""
    known = KNOWN.get(spec)
    hub_id = known.hub_id if known else spec
    looked = (f"{local}/{META}" if local
              else "no local data dir (set --data-dir or $TEXTCNN_DATA_DIR)")
    where = f"looked in {looked} and on the Hugging Face Hub as '{hub_id}'"
    if not known and not looks_like_hub_id(spec):
        raise DataError(f"unknown dataset '{spec}': {where}; known names: {', '.join(KNOWN)}")
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes")
                  for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    if offline:
        raise DataError(f"dataset '{spec}' not found offline: {where} (Hub access is off)")
    if not hub_reachable():  # fail now, not after the Hub client's retries
        here = f"no {local}/{META}" if local else "no data dir given"
        raise DataError(f"dataset '{spec}': {here}, and the Hugging Face Hub is unreachable "
                        f"(no network?) to download '{hub_id}'; set TEXTCNN_DATA_DIR (or "
                        f"--data-dir) to a folder holding {spec}/{META}")
    try:
        dd = quiet_datasets().load_dataset(hub_id)
    except Exception as exc:
        raise DataError(f"dataset '{spec}' not found: {where} ({type(exc).__name__})") from None
    text_col = known.text_column if known and task.text_column == "text" else task.text_column
    label_col = known.label_column if known and task.label_column == "label" else task.label_column
    raw, label_names = {}, None
    for split, ds in dd.items():
        name = "validation" if split in ("dev", "valid") else split
        if name not in SPLIT_NAMES:
            continue
        for col in (text_col, label_col):
            if col not in ds.column_names:
                raise DataError(f"Hub dataset '{hub_id}' split '{split}' has no column '{col}'")
        for i, text in enumerate(ds[text_col]):
            if isinstance(text, str):
                check_text(text, f"Hub dataset '{hub_id}' split '{split}' row {i + 1}")
        feature = ds.features[label_col]
        if label_names is None and hasattr(feature, "names"):
            label_names = list(feature.names)
        raw[name] = (ds[text_col], ds[label_col], Path(f"hub:{hub_id}/{split}"))
    return f"hub:{hub_id}", raw, label_names


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's host (``$HF_ENDPOINT``, default huggingface.co), or the proxy that
    ``$HTTPS_PROXY`` / ``$HTTP_PROXY`` names for it, accepts a TCP connection within ``timeout``
    seconds: a machine without network fails at once instead of after the Hub client's
    retries."""
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    proxy = next((os.environ[v] for v in (f"{url.scheme}_proxy", f"{url.scheme.upper()}_PROXY",
                                          "all_proxy", "ALL_PROXY") if os.environ.get(v)), None)
    if proxy:
        url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not url.hostname:
        return True  # cannot tell: let the Hub client try
    port = url.port or (80 if url.scheme == "http" else 443)
    answer: list[bool] = []

    def probe() -> None:  # in a thread: name resolution ignores socket timeouts
        try:
            socket.create_connection((url.hostname, port), timeout=timeout).close()
            answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])
