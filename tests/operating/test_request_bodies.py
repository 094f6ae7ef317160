"""daphne hands a POST's body to the application as it came: Twisted does not parse it.

Twisted parses a form POST (``multipart/form-data``, urlencoded) into ``request.args`` on
the event loop before daphne sees the request, though daphne never reads them: that cost
every POST a ``Content-Type`` parse through the ``email`` package (18% of the event loop
serving steps), let a hostile multipart body hold the whole process, and answered a
malformed one with Twisted's HTML page. ``python -m ether_site.serve`` (what ``make run``
and the cluster start) turns it off (``ether_site.serve.EtherWebRequest``).
"""

from __future__ import annotations

import http.client

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
