"""The WSGI application gunicorn serves (``bench.dot.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.dot.settings")
application = get_wsgi_application()
