"""What the lab Asterisk did: its full log, ARI REST, the CLI (through scripts/asterisk-sandbox).

lab = AsteriskLab.from_sandbox()
mark = lab.log_offset()
result = run_call(Call(to="support", ...))
dest = lab.wait_labdest(result.call_id, since=mark)   # LabLine(status="given", recording=...)
end = lab.wait_labend(result.call_id, since=mark)
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SANDBOX_SCRIPT = REPO / "scripts" / "asterisk-sandbox"

# The NOTICE line Log() writes (not the VERBOSE "Executing [...] Log(...)" line before it).
_LAB_LINE = re.compile(
    r"\] NOTICE\[[^\]]*\](?:\[[^\]]*\])? [^:]*: (?P<kind>LABDEST|LABEND) uniqueid=(?P<uniqueid>\S*) "
    r"callid=(?P<callid>\S*) status=(?P<status>\S*) reason=(?P<reason>\S*) recording=(?P<recording>\S*)$"
)


@dataclass(frozen=True)
class LabLine:
    """A LABDEST (call reached its destination) or LABEND (caller hung up) line of the lab dialplan."""

    kind: str
    uniqueid: str
    callid: str
    status: str
    reason: str
    recording: str
    line: str

    @property
    def log_tag(self) -> str:
        """Asterisk's call tag in the log (``C-0000002a``), shared by every line of this call."""
        m = re.search(r"\]\[(C-[0-9a-f]+)\]", self.line)
        return m.group(1) if m else ""


class AriError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"ARI {method} {path}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def sandbox_unavailable_reason() -> str | None:
    """None when this machine can run the sandbox and sipp; else why not."""
    if os.geteuid() != 0:
        return "the Asterisk sandbox needs root (chroot, mount, raw sockets for sipp)"
    if not SANDBOX_SCRIPT.is_file():
        return f"missing {SANDBOX_SCRIPT}"
    for tool, pkg in (
        ("chroot", "coreutils"),
        ("mount", "mount"),
        ("python3", "python3"),
        ("sipp", "sip-tester"),
    ):
        if shutil.which(tool) is None:
            return f"'{tool}' is missing (apt-get install {pkg}, or scripts/setup)"
    sandbox_dir = Path(os.environ.get("CALLCONSENT_SANDBOX_DIR", "/var/cache/callconsent-sandbox"))
    if (
        shutil.which("debootstrap") is None
        and not (sandbox_dir / "rootfs" / "usr/sbin/asterisk").exists()
    ):
        return "debootstrap is missing and no sandbox is built (apt-get install debootstrap, or scripts/setup)"
    return None


def sandbox(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run scripts/asterisk-sandbox with ``args``."""
    proc = subprocess.run(
        [str(SANDBOX_SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"asterisk-sandbox {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
        )
    return proc


@dataclass(frozen=True)
class AsteriskLab:
    """Paths, credentials and helpers of the running lab Asterisk."""

    root: Path  # the chroot (host path)
    lab_dir: Path  # same path on the host and inside the chroot
    recordings_dir: Path
    prompts_dir: Path
    state_dir: Path
    log_path: Path  # Asterisk's full log (host path)
    ari_url: str  # http://127.0.0.1:8088/ari
    ari_user: str
    ari_password: str
    ami_host: str
    ami_port: int
    ami_user: str
    ami_password: str
    sip_target: str  # 127.0.0.1:5060

    @classmethod
    def from_sandbox(cls) -> AsteriskLab:
        env: dict[str, str] = {}
        for line in sandbox("env").stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                env[key.strip()] = value.strip()
        return cls(
            root=Path(env["CALLCONSENT_SANDBOX_ROOT"]),
            lab_dir=Path(env["CALLCONSENT_LAB_DIR"]),
            recordings_dir=Path(env["CALLCONSENT_RECORDINGS_DIR"]),
            prompts_dir=Path(env["CALLCONSENT_PROMPTS_DIR"]),
            state_dir=Path(env["CALLCONSENT_STATE_DIR"]),
            log_path=Path(env["CALLCONSENT_ASTERISK_LOG"]),
            ari_url=env["CALLCONSENT_ARI_URL"],
            ari_user=env["CALLCONSENT_ARI_USER"],
            ari_password=env["CALLCONSENT_ARI_PASSWORD"],
            ami_host=env["CALLCONSENT_AMI_HOST"],
            ami_port=int(env["CALLCONSENT_AMI_PORT"]),
            ami_user=env["CALLCONSENT_AMI_USER"],
            ami_password=env["CALLCONSENT_AMI_PASSWORD"],
            sip_target=env["CALLCONSENT_SIP_TARGET"],
        )

    # --- CLI ---------------------------------------------------------------------------------

    def cli(self, command: str, timeout: float = 30) -> str:
        """Output of an Asterisk CLI command, e.g. ``cli("core show channels concise")``."""
        return sandbox("cli", command, timeout=timeout).stdout

    # --- the full log ------------------------------------------------------------------------

    def log_offset(self) -> int:
        """Current end of the full log: pass it as ``since`` to only see later lines."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def read_log(self, since: int = 0) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def find_log(self, pattern: str | re.Pattern[str], since: int = 0) -> list[re.Match[str]]:
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        return list(rx.finditer(self.read_log(since)))

    def wait_for_log(
        self, pattern: str | re.Pattern[str], since: int = 0, timeout: float = 10.0
    ) -> re.Match[str]:
        """First match of ``pattern`` in the log after ``since``; AssertionError on timeout."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.read_log(since))
            if m:
                return m
            if time.monotonic() > deadline:
                tail = self.read_log(since)[-3000:]
                raise AssertionError(
                    f"no log line matching {rx.pattern!r} within {timeout} s; log tail:\n{tail}"
                )
            time.sleep(0.05)

    def lab_lines(self, since: int = 0) -> list[LabLine]:
        """Every LABDEST/LABEND line after ``since``, in order."""
        out = []
        for line in self.read_log(since).splitlines():
            m = _LAB_LINE.search(line)
            if m:
                out.append(LabLine(line=line, **{k: v for k, v in m.groupdict().items()}))
        return out

    def call_log(self, lab: LabLine, since: int = 0) -> list[str]:
        """Every log line of the call ``lab`` belongs to (same ``[C-...]`` tag), after ``since``."""
        tag = f"][{lab.log_tag}]"
        return [line for line in self.read_log(since).splitlines() if lab.log_tag and tag in line]

    def _wait_lab(self, kind: str, call_id: str, since: int, timeout: float) -> LabLine:
        deadline = time.monotonic() + timeout
        while True:
            for lab in self.lab_lines(since):
                if lab.kind == kind and lab.callid == call_id:
                    return lab
            if time.monotonic() > deadline:
                tail = self.read_log(since)[-3000:]
                raise AssertionError(
                    f"no {kind} line for Call-ID {call_id} within {timeout} s; log tail:\n{tail}"
                )
            time.sleep(0.05)

    def wait_labdest(self, call_id: str, since: int = 0, timeout: float = 30.0) -> LabLine:
        """The LABDEST line of the call with SIP Call-ID ``call_id`` (it reached its destination)."""
        return self._wait_lab("LABDEST", call_id, since, timeout)

    def wait_labend(self, call_id: str, since: int = 0, timeout: float = 30.0) -> LabLine:
        """The LABEND line of the call (its caller channel hung up)."""
        return self._wait_lab("LABEND", call_id, since, timeout)

    # --- ARI ---------------------------------------------------------------------------------

    def ari_headers(self) -> dict[str, str]:
        """The Authorization header for ARI (aiohttp 3.14 deprecates auth=: send it yourself)."""
        token = base64.b64encode(f"{self.ari_user}:{self.ari_password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def ari_ws_url(self, app: str, subscribe_all: bool = False) -> str:
        query = urllib.parse.urlencode(
            {"app": app, "subscribeAll": "true" if subscribe_all else "false"}
        )
        return self.ari_url.replace("http://", "ws://", 1) + f"/events?{query}"

    def ari(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        timeout: float = 10.0,
    ) -> Any:
        """One ARI REST call (blocking); returns the decoded JSON body or None."""
        url = self.ari_url + "/" + path.lstrip("/")
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        headers = self.ari_headers()
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method.upper(), headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310  (http to loopback ARI)
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise AriError(e.code, method, path, e.read().decode(errors="replace")) from e
        return json.loads(raw) if raw.strip() else None

    def channels(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.ari("GET", "channels")
        return result

    def wait_no_channels(self, timeout: float = 15.0) -> None:
        """Wait until Asterisk has no channels left (all lab calls ended)."""
        deadline = time.monotonic() + timeout
        while self.channels():
            if time.monotonic() > deadline:
                names = [c.get("name") for c in self.channels()]
                raise AssertionError(f"channels still up after {timeout} s: {names}")
            time.sleep(0.1)
