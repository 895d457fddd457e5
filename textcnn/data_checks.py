"""Why a data file or the Hub cannot be read: the line of a malformed CSV row, the Hub's reach.

The ``datasets`` CSV builder reports a broken row as "An error occurred while generating the
dataset"; :func:`csv_problem` finds the row itself. :func:`hub_reachable` lets a machine without
network fail at once, naming the variable to set, instead of after the Hub client's retries.

Example
-------
>>> bad = tmp_dir / "bad.csv"
>>> _ = bad.write_text('text,label\\n"fine",1\\n"a, b",0,extra\\n')
>>> csv_problem(bad, ",").split(": ", 1)[1]
"3 fields, but the header has 2 (quote a field that holds ',')"
"""

from __future__ import annotations

import csv
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit


def csv_problem(path: Path, delimiter: str) -> str | None:
    """``path:line: ...`` of the first row the CSV parser would reject, or None."""
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        header, start = None, 1
        try:
            for row in reader:
                if header is None:
                    header = row
                elif len(row) > len(header):
                    sep = "a tab" if delimiter == "\t" else f"'{delimiter}'"
                    return (f"{path}:{start}: {len(row)} fields, but the header has "
                            f"{len(header)} (quote a field that holds {sep})")
                start = reader.line_num + 1
        except csv.Error as err:
            what = "a quoted field opened here is never closed" if "end of data" in str(err) \
                else str(err)
            return f"{path}:{start}: {what}"
    return None


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
