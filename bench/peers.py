"""The benchmark's loopback targets and peers: nginx (plain HTTP, HTTPS with a self-signed
certificate, a bare TCP port, and a target the benchmark can make fail), blackbox_exporter, wrk.

The tools come from Debian's packages (``apt-get install -y``) when they are missing.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.proc import Processes
from control_plane.dev.embedded import free_port

# command -> Debian package
TOOLS = {
    "wrk": "wrk",
    "nginx": "nginx",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
}
BLACKBOX_MODULES = {"http": "http_2xx", "https": "http_2xx_tls", "tcp": "tcp_connect"}


# Optional: without it the agent scenario says it has no peer figures, it does not fake them.
OPTIONAL_TOOLS = frozenset({"prometheus-blackbox-exporter"})


def ensure_tools() -> list[str]:
    """Install the Debian packages of missing tools; returns what was installed. An optional
    tool that cannot be installed is said on stdout, not fatal (its figures are then absent)."""
    installed: list[str] = []
    required = [c for c in TOOLS if c not in OPTIONAL_TOOLS and not _which(c)]
    if required:
        installed += _apt_install(required)
    for cmd in sorted(c for c in OPTIONAL_TOOLS if not _which(c)):
        try:
            installed += _apt_install([cmd])
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            print(f"bench: {cmd} is not installed and cannot be ({exc}); going on without it")
    return installed


def _apt_install(cmds: list[str]) -> list[str]:
    missing = [TOOLS[c] for c in cmds]
    if os.geteuid() != 0:
        raise RuntimeError(
            f"missing {', '.join(missing)}: run as root, or `sudo apt-get install -y "
            f"{' '.join(missing)}` first"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"bench: installing {' '.join(missing)} (apt-get)", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, check=True)
    still = [cmd for cmd in cmds if not _which(cmd)]
    if still:
        raise RuntimeError(f"still missing after apt-get install: {', '.join(still)}")
    return missing


def _which(cmd: str) -> str | None:
    return shutil.which(cmd) or shutil.which(cmd, path="/usr/sbin:/usr/bin:/sbin:/bin")


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A P-256 certificate for 127.0.0.1 / localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigil-bench")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "bench.crt", folder / "bench.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{http_port} backlog=4096;
        location / {{ return 200 "ok\\n"; }}
        # 500 while the flag file <flags>/<name> exists: a target the benchmark breaks on cue.
        location ~ ^/flaky/(?<flag>[a-z0-9-]+)$ {{
            if (-f {flags}/$flag) {{ return 500 "failing\\n"; }}
            return 200 "ok\\n";
        }}
    }}
    server {{
        listen 127.0.0.1:{https_port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ return 200 "ok\\n"; }}
    }}
    # The TCP target: accepts connections and closes them without a word.
    server {{
        listen 127.0.0.1:{tcp_port} backlog=4096;
        return 444;
    }}
}}
"""


@dataclass
class Nginx:
    folder: Path
    procs: Processes
    http_port: int = 0
    https_port: int = 0
    tcp_port: int = 0

    @property
    def flags(self) -> Path:
        return self.folder / "flags"

    def url(self, variant: str, path: str = "/") -> str:
        if variant == "https":
            return f"https://127.0.0.1:{self.https_port}{path}"
        return f"http://127.0.0.1:{self.http_port}{path}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "tmp").mkdir(exist_ok=True)
        self.flags.mkdir(exist_ok=True)
        self.flags.chmod(0o755)  # nginx workers run as nobody
        cert, key = self_signed_cert(self.folder)
        self.http_port, self.https_port, self.tcp_port = free_port(), free_port(), free_port()
        conf = self.folder / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                dir=self.folder,
                flags=self.flags,
                cert=cert,
                key=key,
                http_port=self.http_port,
                https_port=self.https_port,
                tcp_port=self.tcp_port,
            )
        )
        nginx = _which("nginx") or "nginx"
        self.procs.start("nginx", [nginx, "-e", "stderr", "-p", str(self.folder), "-c", str(conf)])
        _wait_http(self.url("http"), self.procs, "nginx")

    def fail(self, flag: str, failing: bool = True) -> None:
        path = self.flags / flag
        if failing:
            path.touch()
        else:
            path.unlink(missing_ok=True)


BLACKBOX_CONF = """\
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  http_2xx_tls:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        insecure_skip_verify: true
  tcp_connect:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
"""


@dataclass
class Blackbox:
    """One blackbox_exporter. ``gomaxprocs``: None runs with Go's default (one P per core),
    a number sets ``GOMAXPROCS`` (the bench runs both and keeps the better per core)."""

    folder: Path
    procs: Processes
    port: int = 0
    gomaxprocs: int | None = None
    name: str = "blackbox"

    @property
    def label(self) -> str:
        return "default GOMAXPROCS" if self.gomaxprocs is None else f"GOMAXPROCS={self.gomaxprocs}"

    @staticmethod
    def installed() -> bool:
        return _which("prometheus-blackbox-exporter") is not None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "blackbox.yml"
        conf.write_text(BLACKBOX_CONF)
        self.port = free_port()
        exe = _which("prometheus-blackbox-exporter") or "prometheus-blackbox-exporter"
        env = {k: v for k, v in os.environ.items() if k != "GOMAXPROCS"}
        if self.gomaxprocs is not None:
            env["GOMAXPROCS"] = str(self.gomaxprocs)
        self.procs.start(
            self.name,
            [
                exe,
                f"--config.file={conf}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            env,
        )
        _wait_http(f"http://127.0.0.1:{self.port}/-/healthy", self.procs, self.name)

    def probe_url(self, variant: str, nginx: Nginx) -> str:
        target = f"127.0.0.1:{nginx.tcp_port}" if variant == "tcp" else nginx.url(variant)
        module = BLACKBOX_MODULES[variant]
        return f"http://127.0.0.1:{self.port}/probe?target={target}&module={module}"

    def probe_succeeds(self, variant: str, nginx: Nginx) -> bool:
        with _opener().open(self.probe_url(variant, nginx), timeout=10) as resp:
            body = resp.read().decode()
        return re.search(r"^probe_success 1$", body, re.M) is not None


@dataclass
class WrkRun:
    requests: int
    seconds: float
    errors: int


def wrk(url: str, connections: int, seconds: float) -> WrkRun:
    """``wrk`` with one thread and ``connections`` keep-alive connections for ``seconds``."""
    out = subprocess.run(
        [
            _which("wrk") or "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if not done:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return WrkRun(int(done.group(1)), float(done.group(2)) * scale, errors)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _wait_http(url: str, procs: Processes, name: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        procs.check()
        try:
            with _opener().open(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer {url} within {within:.0f} s:\n{procs.tail(name)}")


DNS_ZONE = "vigil-bench.test."


@dataclass
class SlowDns:
    """The slow-and-named variant's peers: ``bench.slowserver`` (answers after ``lo_ms``-``hi_ms``)
    and ``bench.dnsserver`` (every name under ``DNS_ZONE`` is 127.0.0.1, with ``ttl`` s). A
    process sees that DNS server when started through ``wrap()``: its own mount namespace with
    ``/etc/resolv.conf`` bound to a file naming the bench's server (needs root and unshare; the
    machine's own resolv.conf is not touched)."""

    folder: Path
    procs: Processes
    lo_ms: float = 50.0
    hi_ms: float = 200.0
    ttl: int = 30
    port: int = 0
    dns_address: str = ""

    def start(self) -> None:
        if os.geteuid() != 0 or not _which("unshare"):
            raise RuntimeError("the slow-dns variant needs root and unshare(1) (util-linux)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        py = sys.executable
        self.procs.start(
            "slowserver",
            [py, "-m", "bench.slowserver", str(self.port), str(self.lo_ms), str(self.hi_ms)],
        )
        # A loopback address of its own on port 53 (resolv.conf takes no port).
        self.dns_address = f"127.53.{os.getpid() % 250 + 1}.{free_port() % 250 + 1}"
        self.procs.start(
            "dnsserver",
            [py, "-m", "bench.dnsserver", self.dns_address, "53", DNS_ZONE, str(self.ttl)],
        )
        (self.folder / "resolv.conf").write_text(
            f"nameserver {self.dns_address}\noptions timeout:2 attempts:1\n"
        )
        _wait_http(f"http://127.0.0.1:{self.port}/", self.procs, "slowserver")
        self._wait_dns()

    def _wait_dns(self, within: float = 10.0) -> None:
        import dns.resolver

        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [self.dns_address]
        res.lifetime = 1.0
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.procs.check()
            try:
                res.resolve(f"probe.{DNS_ZONE}", "A")
                return
            except Exception:  # not up yet
                time.sleep(0.1)
        raise RuntimeError(f"the bench DNS server did not answer:\n{self.procs.tail('dnsserver')}")

    def url(self, i: int) -> str:
        return f"http://t{i}.{DNS_ZONE.rstrip('.')}:{self.port}/"

    def wrap(self) -> list[str]:
        """A command prefix: run the rest with this variant's resolv.conf."""
        return [
            _which("unshare") or "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$0" /etc/resolv.conf && exec "$@"',
            str(self.folder / "resolv.conf"),
        ]
