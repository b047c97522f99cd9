"""gunicorn entry point: `gunicorn ingest.wsgi:app`."""

from ingest.app import create_app
from shared.bootstrap import web_settings

app = create_app(web_settings())
