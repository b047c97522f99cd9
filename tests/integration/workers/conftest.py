from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from shared.config import load_settings
from shared.db import make_engine
from shared.migrate import upgrade


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db(request, tmp_path) -> Iterator[Engine]:
    """The test PostgreSQL database, then a migrated SQLite file (`make run`'s database)."""
    if request.param == "postgresql":
        yield request.getfixturevalue("db")
        return
    url = f"sqlite:///{tmp_path / 'statuspipe.db'}"
    upgrade(url)
    engine = make_engine(load_settings({"DATABASE_URL": url}))
    yield engine
    engine.dispose()
