"""The task routes' serializers, by topic: ``inputs`` (strict bodies), ``outputs`` (the
product answers), ``harness`` (the harness answers: bundle, claim, heartbeat, …) and
``queries`` (query strings). The output serializers render the answers, so the OpenAPI
schema is the code."""
