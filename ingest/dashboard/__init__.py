"""`/dashboard`: one page for operators, signed in with the API token.

1. `session.py`  sign-in: the API token checked once, then a signed HttpOnly cookie
2. `views.py`    the routes: the page, sign in and out, its data, a stream token for the feed
3. `overview.py` what the page shows, read from PostgreSQL and Redis
4. `templates/`, `static/`  the page itself; its script draws the chart and runs the live feed,
   and every file it loads is served from here (no CDN: it works without the internet)
"""

from __future__ import annotations

from ingest.dashboard.views import bp

__all__ = ["bp"]
