"""What ``python -m ether_site.serve`` (what ``make run`` and the cluster start) changes in
daphne, for a process under load.

- A POST's body reaches the application as it came. Twisted parses a form POST
  (``multipart/form-data``, urlencoded) into ``request.args`` on the event loop before
  daphne sees the request, though daphne never reads them: that cost every POST a
  ``Content-Type`` parse through the ``email`` package (18% of the event loop serving
  steps), let a hostile multipart body hold the whole process, and answered a malformed
  one with Twisted's HTML page (``ether_site.serve.EtherWebRequest``).
- The objects of startup are frozen out of the garbage collector's full collections
  (``ether_site.serve.freeze_startup_objects``).
"""

from __future__ import annotations

import http.client
import subprocess
import sys

import pytest

from tests.servers import daphne

pytestmark = pytest.mark.django_db(transaction=True)


def post(port: int, path: str, body: bytes, content_type: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_a_malformed_multipart_body_gets_our_problem_document_not_twisteds_page(tmp_path):
    with daphne(tmp_path) as server:
        status, content_type, body = post(
            server.port,
            "/api/harness/tasks/1/steps",
            b"this is not multipart at all",
            "multipart/form-data; boundary=nothing-here",
        )
    # Before: 400 "Bad Request" as Twisted's HTML, the application never asked.
    assert (status, content_type) == (401, "application/problem+json")
    assert b"Bad Request" not in body


def test_a_form_body_reaches_the_application_unparsed_and_whole(tmp_path):
    """20,000 form fields, 1.1 MB (Twisted's parse of these held the event loop 0.26 s
    before anything of ours could refuse them): the application gets the body and its
    size limit answers, as for any other body past ``ETHER_MAX_BODY_BYTES``."""
    fields = b"".join(
        b'--xyz\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i
        for i in range(20_000)
    )
    with daphne(tmp_path) as server:
        status, content_type, _ = post(
            server.port,
            "/api/harness/tasks/1/steps",
            fields + b"--xyz--\r\n",
            "multipart/form-data; boundary=xyz",
        )
    assert (status, content_type) == (413, "application/problem+json")


def test_the_server_freezes_what_startup_left_before_it_serves():
    """A served process's startup objects (Django, the app, every module) are frozen out
    of the garbage collector's full collections, which otherwise stopped it ~100 ms about
    once a second under load (ether_site.serve.freeze_startup_objects). Run in a child
    process: freezing is for the life of a process."""
    script = (
        "import gc, daphne.server\n"
        "from ether_site.asgi import application\n"
        "from ether_site.serve import RedactingServer\n"
        "daphne.server.Server.run = lambda self: print(gc.get_freeze_count())\n"
        "before = gc.get_freeze_count()\n"
        "RedactingServer(application=application, endpoints=['tcp:port=0']).run()\n"
        "print(before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    frozen, before = int(out[0]), int(out[1])
    assert before == 0
    assert frozen > 100_000  # Django, the app's models and URLs, every module
