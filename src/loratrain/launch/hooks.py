"""Tell someone about a run: `--notify URL` (an HTTP POST of a small JSON) and `--on-exit CMD`.

Both are best effort. A POST has a short timeout and runs on a thread of its own, so a slow or dead
server never holds up training; a failure is reported through `say` and kept in the record's `hooks`
list, never raised. The on-exit command runs once, after the record is closed, through /bin/sh with the
run's facts in LORATRAIN_* environment variables, and with a time limit.

Events: "start" (the training process started), "save" (sd-scripts announced a saved model, its
`saving checkpoint: FILE` line), "end" (the record is closed: status, steps, loss, cause of a failure).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import threading
import urllib.error
import urllib.request
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from loratrain.errors import ConfigError, Problem

NOTIFY_TIMEOUT_S = 5.0
ON_EXIT_TIMEOUT_S = 120.0
SAVE_LINE = re.compile(r"saving checkpoint: (?P<file>.+?)\s*$")  # train_network.py's save_model announcement


def check_notify_url(url: str | None) -> None:
    """Refuse, before anything is launched, a notify URL that is not http(s)://host..."""
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            [
                Problem(
                    f"--notify takes an http:// or https:// URL, not {url!r}",
                    key="--notify",
                    value=url,
                    fix="give the address of a web hook, e.g. --notify https://ntfy.sh/my-runs",
                )
            ]
        )


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


class Hooks:
    """One run's notifications. `event(name, facts)` posts; `on_exit(facts)` runs the command; `close()` waits
    (briefly) for posts still in flight. `failures` lists what did not work, for the record."""

    def __init__(
        self,
        notify_url: str | None = None,
        on_exit_cmd: str | None = None,
        say: Callable[[str], None] | None = None,
    ):
        self.notify_url = notify_url
        self.on_exit_cmd = on_exit_cmd
        self.say = say or (lambda _text: None)
        self.failures: list[dict[str, Any]] = []
        self.sent: list[str] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.notify_url or self.on_exit_cmd)

    def event(self, name: str, facts: Mapping[str, Any]) -> None:
        if not self.notify_url:
            return
        body = {"event": name, "time": _now(), **dict(facts)}
        thread = threading.Thread(target=self._post, args=(name, body), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _post(self, name: str, body: dict[str, Any]) -> None:
        assert self.notify_url is not None
        data = json.dumps(body, default=str).encode()
        request = urllib.request.Request(
            self.notify_url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "loratrain"},
        )
        try:
            with urllib.request.urlopen(request, timeout=NOTIFY_TIMEOUT_S) as answer:
                answer.read(1024)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            self._failed("notify", name, f"POST {self.notify_url} failed: {reason}")
            return
        with self._lock:
            self.sent.append(name)

    def _failed(self, hook: str, event: str, message: str) -> None:
        with self._lock:
            self.failures.append({"hook": hook, "event": event, "time": _now(), "error": message})
        try:
            self.say(f"warning: {hook} hook: {message} (the run is not affected)")
        except Exception:
            pass

    def on_exit(self, facts: Mapping[str, Any]) -> None:
        if not self.on_exit_cmd:
            return
        env = dict(os.environ)
        env.update({f"LORATRAIN_{k.upper()}": "" if v is None else str(v) for k, v in facts.items()})
        try:
            done = subprocess.run(
                ["/bin/sh", "-c", self.on_exit_cmd],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=ON_EXIT_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            self._failed(
                "on-exit", "end", f"{self.on_exit_cmd!r} ran longer than {ON_EXIT_TIMEOUT_S:g}s and was killed"
            )
            return
        except OSError as exc:
            self._failed("on-exit", "end", f"{self.on_exit_cmd!r} could not start: {exc.strerror or exc}")
            return
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] if done.stderr else []
            self._failed(
                "on-exit",
                "end",
                f"{self.on_exit_cmd!r} exited with {done.returncode}" + (f": {tail[0]}" if tail else ""),
            )

    def close(self, timeout_s: float = NOTIFY_TIMEOUT_S + 1.0) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        self._threads = []


class SaveSpotter:
    """A runner sink in front of the others: passes every byte on and notes sd-scripts' save announcements."""

    def __init__(self, inner: Any):
        self.inner = inner
        self._rest = ""
        self._lock = threading.Lock()
        self._saved: list[str] = []

    def feed(self, data: bytes) -> None:
        try:
            text = self._rest + data.decode("utf-8", errors="replace")
            *lines, self._rest = re.split(r"[\r\n]", text)
            self._rest = self._rest[-4096:]
            found = [m.group("file") for m in map(SAVE_LINE.search, lines) if m]
            if found:
                with self._lock:
                    self._saved.extend(found)
        finally:
            if self.inner is not None:
                self.inner.feed(data)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()

    def take(self) -> list[str]:
        with self._lock:
            saved, self._saved = self._saved, []
        return saved
