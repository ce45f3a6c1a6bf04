"""CloudDocs: the demo's documents API, server-rendered web app, single-page app and worker.

They use only tokensmith's public API (``tokensmith.resource`` for the API, ``tokensmith.client``
for the web app), so they double as worked examples; ``tokensmith demo`` serves them next to the
authorization server (:mod:`tokensmith.demo.servers`). They ship inside the package so that the
demo runs from an installed tokensmith, not only from a source checkout.
"""
