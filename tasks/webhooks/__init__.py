"""Webhooks to harness apps, to the Standard Webhooks specification (docs/webhooks.md).

``outbox`` writes deliveries inside the transaction of the change that causes them,
``targets`` is the SSRF guard, ``sender`` claims and sends them (``manage.py
send_webhooks``), ``services`` holds the writes people make (URL, secret, test, resend).
"""
