"""Uploads for the Data page: uploaded bytes to temporary files, kind guessing and the mapping
editor's starting point. ``st.file_uploader`` gives bytes; the store's loaders read paths, so every
upload is written once to a temporary file named after it (the suffix tells gzip from CSV)."""
from __future__ import annotations

import os
import shutil
import tempfile
import time

import streamlit as st

import store
from store.errors import UserInputError
from store.mapping import ALIASES, REQUIRED, normalise_header

KINDS = ("events", "spend", "survey")
PREFIX = "opsfunnel-upload-"
# A session's folder untouched this long belongs to a session that has ended (a browser tab closed without
# loading or removing its files: Streamlit tells the app nothing then); every use of a file touches it.
ABANDONED_AFTER_S = 6 * 3600


def max_upload_mb() -> float:
    """The upload limit in MB: Streamlit's ``server.maxUploadSize`` (the uploader refuses bigger files
    itself; the Data page checks again so a file that slipped through is refused with a sentence)."""
    try:
        return float(st.get_option("server.maxUploadSize"))
    except Exception:  # an option this runtime does not know
        return 200.0


def max_upload_bytes() -> int:
    return int(max_upload_mb() * 2**20)


def temp_path(upload) -> str:
    """The temporary file holding ``upload`` (written once per upload and session)."""
    files = st.session_state.setdefault("_data_tmp", {})
    path = files.get(upload.file_id)
    if path and os.path.exists(path):
        os.utime(path)                      # in use: not abandoned (see sweep_abandoned)
        return path
    folder = st.session_state.get("_data_tmp_dir")
    if not folder or not os.path.isdir(folder):
        sweep_abandoned()
        folder = tempfile.mkdtemp(prefix=PREFIX)
        st.session_state["_data_tmp_dir"] = folder
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in upload.name)
    n = st.session_state.get("_data_tmp_n", 0)   # never reused: files of removed uploads leave gaps
    st.session_state["_data_tmp_n"] = n + 1
    path = os.path.join(folder, f"{n}_{safe}")
    with open(path, "wb") as out:
        out.write(upload.getvalue())
    files[upload.file_id] = path
    return path


def sweep_abandoned(now: float | None = None) -> int:
    """Delete the upload folders of ended sessions: those whose folder and files were all last touched more than
    :data:`ABANDONED_AFTER_S` ago (a live session's file, should it be swept, is written again from its upload
    on its next use). Folders of other users of the machine are left alone. Returns how many were deleted."""
    now = time.time() if now is None else now
    uid = os.getuid() if hasattr(os, "getuid") else None
    deleted = 0
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or (uid is not None and entry.stat().st_uid != uid):
                continue
            newest = max([entry.stat().st_mtime] + [f.stat().st_mtime for f in os.scandir(entry.path)])
        except OSError:                      # gone meanwhile, or not ours to read
            continue
        if now - newest > ABANDONED_AFTER_S:
            shutil.rmtree(entry.path, ignore_errors=True)
            deleted += not os.path.exists(entry.path)
    return deleted


def forget(upload_ids) -> None:
    """Delete the temporary files of loaded uploads (and the session's folder once it is empty)."""
    files = st.session_state.get("_data_tmp", {})
    for fid in upload_ids:
        path = files.pop(fid, None)
        if path and os.path.exists(path):
            os.unlink(path)
    folder = st.session_state.get("_data_tmp_dir")
    if folder and not files and os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)
        st.session_state.pop("_data_tmp_dir", None)


def keep_only(upload_ids) -> None:
    """Delete the temporary files of uploads no longer in the uploader (removed by the user, or emptied from
    it after a load): a copy of a file the user took back does not stay on the server's disk."""
    current = set(upload_ids)
    forget([fid for fid in st.session_state.get("_data_tmp", {}) if fid not in current])


def headers_of(path: str, name: str) -> list[str]:
    fn = getattr(store, "inspect_headers", None)
    if fn is not None:
        return list(fn(path, name=name))
    from store import formats
    info = formats.inspect(path, name)
    info.cleanup()
    return list(info.headers)


def auto_mapping(kind: str, headers: list[str]) -> dict[str, str]:
    """The alias mapping as far as it goes (``store.detect_mapping`` refuses a file with a required
    column missing; the editor needs the partial mapping to let the user complete it)."""
    try:
        return dict(store.detect_mapping(kind, headers))
    except UserInputError:
        pass
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(normalise_header(h), h)
    mapping, taken = {}, set()
    for canonical, names in ALIASES[kind].items():
        for name in names:
            h = by_norm.get(normalise_header(name))
            if h is not None and h not in taken:
                mapping[canonical] = h
                taken.add(h)
                break
    return mapping


def guess_kind(name: str, headers: list[str]) -> str:
    """The kind named in the file name (events / spend / survey words), else the kind whose required
    columns the headers map best (events on a tie)."""
    lowered = name.lower()
    by_name = (("events", ("event", "事件", "行为")), ("spend", ("spend", "cost", "花费", "投放")),
               ("survey", ("survey", "问卷", "调研")))
    for kind, words in by_name:
        if any(w in lowered for w in words):
            return kind
    scores = {k: sum(c in auto_mapping(k, headers) for c in REQUIRED[k]) / len(REQUIRED[k]) for k in KINDS}
    best = max(KINDS, key=lambda k: (scores[k], k == "events"))
    return best if scores[best] > 0 else "events"
