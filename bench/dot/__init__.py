"""django-oauth-toolkit as a peer of the benchmark: a Django project served by gunicorn
(settings, urls, wsgi, the ``bench_setup`` command) and its driver, :mod:`bench.dot.peer`."""

# the bench user and the web application's redirect URI (those of tokensmith's bench, too)
USERNAME = "bench"
PASSWORD = "bench password 123"
REDIRECT = "https://rp.bench/callback"
