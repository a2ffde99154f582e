"""What stands between a request and a page: the password gate and the page boundary.

* :func:`gate` — the server binds 127.0.0.1 (``.streamlit/config.toml``). Served on any other
  address (``--server.address 0.0.0.0``) the app asks for a password before anything renders; with no
  password configured there it refuses to show anything but how to set one. The password comes from
  ``$OPSFUNNEL_PASSWORD`` or ``st.secrets["password"]``; when one is set the login form is shown on a
  loopback address too. A session that gave the right password stays signed in.
* :func:`run_page` — runs the chosen page and catches what escapes it: a ``UserInputError`` (which
  includes an interrupted query) shows its own sentence; anything else is logged with its traceback to
  ``$OPSFUNNEL_LOG`` (default ``data/opsfunnel.log``) under a short reference id, and the user sees a
  short message with that id, never a traceback. Streamlit's own control flow (``st.stop``,
  ``st.rerun``, ``st.switch_page``) passes through untouched.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
import threading
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

import streamlit as st

from store.errors import UserInputError

from .context import tr
from .safe import md_escape

LOGGER_NAME = "opsfunnel.app"
WRONG_PASSWORD_DELAY = 1.0  # seconds
_log_lock = threading.Lock()


# ---------------------------------------------------------------- password gate
def serve_address() -> str:
    """The address the server listens on: ``$OPSFUNNEL_SERVE_ADDRESS`` when set (tests), else the
    ``server.address`` option ("" means every interface)."""
    env = os.environ.get("OPSFUNNEL_SERVE_ADDRESS")
    if env is not None:
        return env.strip()
    try:
        return str(st.get_option("server.address") or "").strip()
    except Exception:  # an option Streamlit does not know in this runtime
        return ""


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; an empty address (every interface) is not."""
    address = address.strip().strip("[]")
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def configured_password() -> str | None:
    """``$OPSFUNNEL_PASSWORD``, else ``password`` in ``.streamlit/secrets.toml``; None when neither is set."""
    env = os.environ.get("OPSFUNNEL_PASSWORD")
    if env:
        return env
    try:
        value = st.secrets.get("password")
    except Exception:  # no secrets file, or one that does not parse
        return None
    return str(value) if value else None


def password_ok(given: str, expected: str) -> bool:
    """Constant-time comparison of the typed password with the configured one."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def gate() -> bool:
    """True when the session may see the app; otherwise draws the login form or the refusal and
    returns False (the caller stops the script)."""
    password = configured_password()
    if password is None:
        if is_loopback(serve_address()):
            return True
        st.title("opsfunnel")
        st.error(tr("This dashboard is served on a network address but no password is configured, so it shows "
                    "nothing. Set the environment variable OPSFUNNEL\\_PASSWORD (or password in "
                    ".streamlit/secrets.toml) and restart, or serve it on 127.0.0.1 only.",
                    "此看板在网络地址上提供服务，但未配置密码，因此不显示任何内容。请设置环境变量 "
                    "OPSFUNNEL\\_PASSWORD（或 .streamlit/secrets.toml 中的 password）后重启，或仅在 127.0.0.1 上提供服务。"))
        return False
    if st.session_state.get("_auth_ok"):
        return True
    st.title("opsfunnel")
    with st.form("auth_form", clear_on_submit=True):
        typed = st.text_input(tr("Password", "密码"), type="password", key="auth_password")
        submitted = st.form_submit_button(tr("Sign in", "登录"))
    if submitted:
        if password_ok(typed or "", password):
            st.session_state["_auth_ok"] = True
            st.rerun()
        time.sleep(WRONG_PASSWORD_DELAY)  # slows guessing down; only this session waits
        st.error(tr("Wrong password.", "密码错误。"))
    return False


# ---------------------------------------------------------------- page boundary
def log_path() -> Path:
    return Path(os.environ.get("OPSFUNNEL_LOG") or "data/opsfunnel.log")


def logger() -> logging.Logger:
    """The app's logger, writing to :func:`log_path` (rotated at 5 MB, 3 old files kept)."""
    log = logging.getLogger(LOGGER_NAME)
    path = log_path().resolve()
    with _log_lock:
        current = [h for h in log.handlers if isinstance(h, RotatingFileHandler)]
        if not any(Path(h.baseFilename) == path for h in current):
            for h in current:
                log.removeHandler(h)
                h.close()
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = True
    return log


def report_error(exc: BaseException, where: str) -> str:
    """Log ``exc`` with its traceback under a new reference id, show the short message; returns the id."""
    ref = secrets.token_hex(4)
    logger().error("ref %s: unexpected error on %s", ref, where, exc_info=(type(exc), exc, exc.__traceback__))
    st.error(tr(f"Something went wrong on this page, so it stopped here. Reference: {ref} (the details are in the "
                "server log; quote this reference when you report it).",
                f"此页面出现意外错误，已在此处停止。参考编号：{ref}（详情见服务器日志；报告问题时请提供此编号）。"))
    return ref


def run_page(page) -> None:
    """``page.run()`` with the page boundary described in the module docstring."""
    try:
        page.run()
    except UserInputError as exc:
        st.error(md_escape(str(exc)))
    except Exception as exc:  # noqa: BLE001 — the boundary: everything unexpected is logged, not shown
        report_error(exc, getattr(page, "url_path", None) or getattr(page, "title", "a page"))
