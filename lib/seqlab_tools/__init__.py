"""The harness around seqlab: a local multi-node cluster with an S3 store, fault injection, load and
browser tests, benchmark helpers and the experiment tables. Used by ``jobs/`` and ``tests/``; the
library never imports it. Install with the ``tools`` extra (``pip install -e .[tools]``).
"""
