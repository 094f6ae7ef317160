"""Verifying a submitted pull request on GitHub, after the result is stored.

The judge checks a PR's URL and branch against the task inside the result's request;
whether the PR exists, its base repository, head branch and commit, its state and its
check runs can only be asked of GitHub, which may be slow, rate-limited or down. So it
is asked after the result commits (a ``PrCheck`` row, then a worker thread started on
commit; ``sweep_verifications`` retries what a crash or a rate limit left), and the
answer becomes a new version of the delivery, announced on the task's topic like the
first (CONTRACT.md §7, docs/delivery.md).
"""
