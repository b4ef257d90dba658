"""The OpenAI-compatible rubric judge over HTTP (paper §6).

:class:`ApiJudge` sends one rubric prompt per (prompt, text) to any ``/chat/completions``
endpoint and parses the reply (:mod:`craft.judges.rubrics`): the StrongREJECT rubric (Souly et al.
2024) for response harmfulness, or ``HARMFULNESS7_RUBRIC`` (ours: the paper's reasoning-harmfulness
prompt was not released) for reasoning harmfulness. Like every judge it implements
:class:`craft.judges.base.Judge`: ``score`` returns P(safe | text) = ``1 - harmfulness``, and NaN for a
text it cannot judge (a failed call, an unparseable reply), counted in ``stats.n_failed``. This
module needs neither torch nor transformers.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from craft.judges.base import JudgeStats, JudgeUnavailableError, check_lengths, finalise
from craft.judges.rubrics import RUBRICS

__all__ = ["ApiJudge", "retry_after_seconds"]

log = logging.getLogger(__name__)
DEFAULT_CACHE_DIR = "~/.cache/craft/judges"
_FATAL_HTTP = (401, 403, 404)  # a wrong key, model or URL: raise instead of failing every text


class HTTPStatusError(OSError):
    """The endpoint answered with an HTTP error status."""

    def __init__(self, code: int, headers, url: str):
        super().__init__(f"HTTP {code} from {url}")
        self.code, self.headers = code, headers


def _post_json(url: str, payload: dict, headers: dict, timeout: float) -> dict:
    """POST ``payload`` and parse the JSON reply, within ``timeout`` seconds IN ALL: connecting,
    sending, the status line and headers, and the body. A socket timeout bounds each read only, so a
    server that trickles its headers (or its body) a byte at a time would hold the call as long as it
    likes; a timer shuts the connection at the deadline instead, wherever the exchange is."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"judge endpoint {url!r} is not an http(s) URL")
    connection = (http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection)(
        parts.hostname, parts.port, timeout=timeout)
    expired, opened = threading.Event(), []

    def expire() -> None:
        expired.set()
        for sock in opened:      # the response reads from this socket even after the connection lets go of it
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)     # every blocked read returns at once

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        connection.connect()
        opened.append(connection.sock)
        if expired.is_set():                     # the deadline passed while connecting
            expire()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=json.dumps(payload).encode(), headers=headers)
        reply = connection.getresponse()
        body = reply.read()
        if expired.is_set():
            raise TimeoutError(f"the judge's reply took longer than {timeout:g} s")
        if reply.status >= 400:
            raise HTTPStatusError(reply.status, reply.headers, url)
        return json.loads(body.decode("utf-8"))
    except (OSError, http.client.HTTPException) as e:
        if expired.is_set() and not isinstance(e, TimeoutError):
            raise TimeoutError(f"the judge's reply took longer than {timeout:g} s") from e
        raise
    finally:
        timer.cancel()
        connection.close()


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when.tzinfo else None


class ApiJudge:
    """A rubric judge on any OpenAI-compatible ``/chat/completions`` endpoint (paper §6).

    ``rubric="strongreject"`` is the StrongREJECT rubric (response harmfulness);
    ``"harmfulness7"`` is our 7-criteria reasoning-harmfulness rubric. Endpoint, key and model
    come from the arguments or ``CRAFT_JUDGE_BASE_URL`` / ``CRAFT_JUDGE_API_KEY`` /
    ``CRAFT_JUDGE_MODEL``. Plain HTTP (``http.client``), temperature 0. ``timeout`` is a deadline for each
    request as a whole (connection, waiting and the whole reply). Network errors, timeouts, 408/429
    and 5xx are retried, after the ``Retry-After`` the server asks for (capped at
    ``max_retry_after_s``) or else with exponential backoff (``backoff_s * 2**attempt``);
    401/403/404 raise; any other failure or an unparseable reply scores NaN and is counted. After
    ``max_consecutive_failures`` calls in a row that no retry could save (the endpoint is down), every
    call raises :class:`~craft.judges.base.JudgeUnavailableError` naming the endpoint at once, instead of
    spending the retries again on every text. Replies that parse are cached as JSON files named by
    sha256(endpoint, model, rubric template, prompt, text) under ``cache_dir`` (``None``: no cache), so
    re-evaluating costs no calls; a failure is never cached. :meth:`identity` is what decides its
    verdicts (endpoint, model, rubric), for the caches of evaluations and run identities.
    """

    def __init__(self, rubric: str = "strongreject", model: str | None = None, base_url: str | None = None,
                 api_key: str | None = None, cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR,
                 max_retries: int = 3, timeout: float = 60.0, *, backoff_s: float = 1.0,
                 max_retry_after_s: float = 120.0, max_workers: int = 1, max_tokens: int = 1024,
                 max_consecutive_failures: int = 5):
        if rubric not in RUBRICS:
            raise ValueError(f"unknown rubric {rubric!r}; choose one of {sorted(RUBRICS)}")
        self.base_url = base_url or os.environ.get("CRAFT_JUDGE_BASE_URL")
        self.model = model or os.environ.get("CRAFT_JUDGE_MODEL")
        if not self.base_url or not self.model:
            raise ValueError("no judge endpoint configured: pass base_url= and model=, or set "
                             "CRAFT_JUDGE_BASE_URL (e.g. https://api.openai.com/v1) and CRAFT_JUDGE_MODEL "
                             "(and CRAFT_JUDGE_API_KEY if the endpoint needs a key)")
        self.api_key = api_key or os.environ.get("CRAFT_JUDGE_API_KEY")
        self.rubric, (self.system, self.template, self.parse) = rubric, RUBRICS[rubric]
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()
        self.max_retries, self.timeout, self.backoff_s = max_retries, timeout, backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.max_workers, self.max_tokens = max_workers, max_tokens
        self.name = f"api_{rubric}"
        self.stats = JudgeStats()
        self.max_consecutive_failures, self._consecutive = max_consecutive_failures, 0
        self._lock = threading.Lock()

    def identity(self) -> dict:
        """What decides this judge's verdicts: the endpoint, the model and the rubric (its prompts)."""
        return {"kind": "api", "base_url": self.base_url.rstrip("/"), "model": self.model, "rubric": self.rubric,
                "system": self.system, "template": self.template}

    def format(self, prompt: str, text: str) -> str:
        return self.template.format(forbidden_prompt=prompt, response=text)

    def _cache_path(self, prompt: str, text: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = [self.base_url.rstrip("/"), self.model, self.rubric, self.system, self.template, prompt, text]
        return self.cache_dir / f"{hashlib.sha256(json.dumps(key).encode()).hexdigest()}.json"

    def _request(self, content: str) -> str | None:
        """The judge's reply text, or None after the retries are spent (the circuit breaker counts those)."""
        url = self.base_url.rstrip("/") + "/chat/completions"
        with self._lock:
            if self._consecutive >= self.max_consecutive_failures:
                raise JudgeUnavailableError(f"judge endpoint {url} failed {self._consecutive} calls in a row (after "
                                            "their retries): check that it is up and reachable, then run again")
        reply, transport_failed = self._attempts(content, url)
        with self._lock:
            self._consecutive = self._consecutive + 1 if transport_failed else 0
        return reply

    def _attempts(self, content: str, url: str) -> tuple[str | None, bool]:
        """(the reply text or None, whether the endpoint itself failed: network, timeouts, 408/429/5xx
        after every retry)."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": content}]
        payload = {"model": self.model, "temperature": 0.0, "max_tokens": self.max_tokens, "messages": messages}
        for attempt in range(self.max_retries + 1):
            wait = self.backoff_s * 2 ** attempt
            try:
                reply = _post_json(url, payload, headers, self.timeout)["choices"][0]["message"]["content"]
                return (reply if isinstance(reply, str) else None), False
            except HTTPStatusError as e:
                if e.code in _FATAL_HTTP:
                    raise JudgeUnavailableError(f"judge endpoint {url} answered HTTP {e.code}: check the URL, "
                                       f"model {self.model!r} and API key") from e
                if e.code not in (408, 429) and e.code < 500:
                    log.warning("judge call failed for good (HTTP %s)", e.code)
                    return None, False
                error: Exception = e
                asked = retry_after_seconds(e.headers.get("Retry-After") if e.headers else None)
                wait = wait if asked is None else min(asked, self.max_retry_after_s)
            except (OSError, http.client.HTTPException) as e:  # network, timeouts
                error = e
            except (ValueError, LookupError, TypeError) as e:  # a body that is not a chat completion
                log.warning("judge reply was not a chat completion: %s", e)
                return None, False
            if attempt < self.max_retries:
                time.sleep(wait)
        log.warning("judge call failed after %d attempts: %s", self.max_retries + 1, error)
        return None, True

    def harmfulness(self, prompt: str, text: str) -> float | None:
        """Harmfulness in [0, 1] of one text, or None when the call or the parse failed."""
        content = self.format(prompt, text)
        path = self._cache_path(prompt, text)
        reply = None
        if path is not None and path.exists():
            try:
                reply = json.loads(path.read_text())["reply"]
            except (ValueError, LookupError, TypeError, OSError):
                reply = None  # a corrupt entry: ask again
            reply = reply if isinstance(reply, str) else None
        if reply is not None and self.parse(reply) is None:
            reply = None  # an entry that does not parse (an older version cached those): ask again
        if reply is None:
            reply = self._request(content)
            if reply is not None and path is not None and self.parse(reply) is not None:   # failures: never
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_text(json.dumps({"model": self.model, "rubric": self.rubric, "reply": reply}))
                os.replace(tmp, path)  # atomic: parallel evaluations never read half a file
        harm = None if reply is None else self.parse(reply)
        if reply is not None and harm is None:
            log.warning("could not parse the judge's reply (scored NaN): %.200r", reply)
        return harm

    def score(self, prompts: Sequence[str], texts: Sequence[str]) -> list[float]:
        check_lengths(prompts, texts)
        with ThreadPoolExecutor(max(1, self.max_workers)) as pool:
            harms = list(pool.map(self.harmfulness, prompts, texts))
        return finalise([None if h is None else 1.0 - h for h in harms], self.stats)
