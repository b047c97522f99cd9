from collections.abc import Iterator

import pytest

from devtools.fake_twilio import FakeTwilio
from tests.twilio_fixtures import AUTH_TOKEN


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    """The fake Twilio REST API, signing callbacks with the tests' auth token."""
    with FakeTwilio(auth_token=AUTH_TOKEN) as running:
        yield running
