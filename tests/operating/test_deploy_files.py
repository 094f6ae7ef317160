"""The production recipe's files (deploy/): Debian's nginx accepts the config and, run
in front of two real daphne processes with a self-signed certificate, carries HTTPS,
the WebSocket and SSE; the systemd units parse."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.servers import ROOT, daphne, free_ports

DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install nginx)"
)


def certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def site_config(directory: Path, *, http: int, https: int, upstreams: list[int]) -> Path:
    """deploy/nginx/ether.conf as shipped, with only what must differ on a test machine
    replaced: the listening ports, the upstream ports and the certificate paths."""
    text = (DEPLOY / "nginx" / "ether.conf").read_text()
    cert, key = certificate(directory)
    text = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", text)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http};")
    text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{https} ssl")
    servers = "".join(f"    server 127.0.0.1:{port} max_fails=0;\n" for port in upstreams)
    text = re.sub(r"(    server 127\.0\.0\.1:\d+ max_fails=0;\n)+", servers, text)
    text = text.replace("/etc/letsencrypt/live/ether.example.com/fullchain.pem", str(cert))
    text = text.replace("/etc/letsencrypt/live/ether.example.com/privkey.pem", str(key))
    site = directory / "ether.conf"
    site.write_text(text)
    main = directory / "nginx.conf"
    temp = "".join(
        f"    {name}_temp_path {directory}/{name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
        + "events {}\nhttp {\n    include /etc/nginx/mime.types;\n"
        + temp
        + f"    include {site};\n}}\n"
    )
    return main


@needs_nginx
def test_nginx_accepts_the_shipped_config(tmp_path):
    http, https = free_ports(2)
    main = site_config(tmp_path, http=http, https=https, upstreams=[8001, 8002])
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr


def wait_listening(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text() if log.exists() else "nginx exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("nginx did not listen")


@needs_nginx
@pytest.mark.django_db(transaction=True)
def test_https_websocket_and_sse_through_nginx_to_two_servers(world, tmp_path):
    with daphne(tmp_path) as one, daphne(tmp_path) as two:
        # Chosen once both servers listen, so neither can be handed one of their ports.
        http, https = free_ports(2)
        main = site_config(tmp_path, http=http, https=https, upstreams=[one.port, two.port])
        nginx = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(main)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(https, nginx, tmp_path / "error.log")
            tls = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
            base = f"https://127.0.0.1:{https}"
            opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls))

            # Plain http is sent to https.
            plain = urllib.request.build_opener(NoRedirect())
            with pytest.raises(urllib.error.HTTPError) as redirected:
                plain.open(f"http://127.0.0.1:{http}/api/tasks", timeout=10)
            assert redirected.value.code == 301
            assert redirected.value.headers["Location"] == "https://127.0.0.1/api/tasks"

            with opener.open(base + "/healthz", timeout=10) as response:
                assert json.loads(response.read()) == {"status": "ok"}
                # nginx's $request_id (32 hex) is what the server took and returned.
                assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
            with pytest.raises(urllib.error.HTTPError) as closed:
                opener.open(base + "/metrics", timeout=10)
            assert closed.value.code == 404

            task = world.task()
            topic = f"tasks/{task.public_id}"
            auth = {"Authorization": f"Bearer {world.key}", "Content-Type": "application/json"}

            def post(path: str, body: dict) -> dict:
                request = urllib.request.Request(
                    base + path, data=json.dumps(body).encode(), method="POST", headers=auth
                )
                with opener.open(request, timeout=30) as response:
                    return json.loads(response.read())

            sse_request = urllib.request.Request(
                f"{base}/api/tasks/{task.public_id}/events",
                headers={"Authorization": f"Bearer {world.token}"},
            )
            with (
                connect(
                    f"wss://127.0.0.1:{https}/api/realtime?token={world.token}",
                    ssl=tls,
                    open_timeout=10,
                ) as ws,
                opener.open(sse_request, timeout=30) as sse,
            ):
                assert sse.headers["Content-Type"].startswith("text/event-stream")
                assert sse.readline() == b"retry: 3000\n"
                ws.send(json.dumps({"action": "subscribe", "topics": [topic]}))
                assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
                run_id = post(
                    f"/api/harness/tasks/{task.public_id}/claim", {"app_id": world.app.app_id}
                )["run_id"]
                post(
                    f"/api/harness/tasks/{task.public_id}/steps",
                    {"run_id": run_id, "phase": "coding_agent", "user_message": "via nginx"},
                )
                # The WebSocket hears the step, through nginx, from whichever process.
                while True:
                    item = json.loads(ws.recv(timeout=15))
                    if item["type"] == "os.harness.step":
                        assert item["user_message"] == "via nginx"
                        break
                # SSE gets it at once, not when a buffer fills.
                started = time.monotonic()
                lines = []
                while b"event: os.harness.step\n" not in lines:
                    lines.append(sse.readline())
                assert time.monotonic() - started < 10
        finally:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait(timeout=10)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_parse(tmp_path):
    """systemd-analyze verify reads each unit as systemd would. The units name
    /opt/ether/venv/bin/python, which does not exist here: that path is pointed at this
    checkout's interpreter for the check, nothing else is changed."""
    units = sorted((DEPLOY / "systemd").glob("ether*"))
    names = {unit.name for unit in units}
    assert {
        "ether@.service",
        "ether-sweeper.service",
        "ether-webhooks.service",
        "ether.target",
        "ether-backup.service",
        "ether-backup.timer",
    } <= names
    python = str(ROOT / ".venv" / "bin" / "python")
    for unit in units:
        if unit.suffix not in {".service", ".timer", ".target"}:
            continue
        name = "ether@8001.service" if unit.name == "ether@.service" else unit.name
        text = unit.read_text().replace("/opt/ether/venv/bin/python", python)
        (tmp_path / unit.name).write_text(text)
        if unit.name == "ether@.service":
            (tmp_path / name).write_text(text)
    checked = subprocess.run(
        [
            *(SYSTEMD_ANALYZE, "verify", "--man=no", "--recursive-errors=no"),
            *(str(tmp_path / n) for n in sorted(os.listdir(tmp_path)) if n != "ether@.service"),
        ],
        capture_output=True,
        text=True,
    )
    # Only complaints about this machine (no running systemd, no ether user, no /opt)
    # may appear: nothing about the units' own syntax.
    bad = [
        line
        for line in checked.stderr.splitlines()
        if re.search(r"(Unknown|Invalid|Failed to parse|bad-setting|Missing '=')", line)
    ]
    assert not bad, checked.stderr
    assert checked.returncode == 0, checked.stderr
