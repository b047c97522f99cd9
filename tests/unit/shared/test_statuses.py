import pytest

from shared.statuses import UNKNOWN_RANK, advances, is_conflict, rank


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("accepted", 0),
        ("scheduled", 0),
        ("queued", 1),
        ("sending", 2),
        ("sent", 3),
        ("delivered", 4),
        ("undelivered", 4),
        ("failed", 4),
        ("canceled", 4),
        ("read", 5),
        ("partially_delivered", UNKNOWN_RANK),
        ("receiving", UNKNOWN_RANK),
        ("", UNKNOWN_RANK),
        ("DELIVERED", UNKNOWN_RANK),
    ],
)
def test_rank(status, expected):
    assert rank(status) == expected


@pytest.mark.parametrize(
    ("current", "incoming", "moves"),
    [
        ("sent", "delivered", True),
        ("delivered", "sent", False),  # late arrival never regresses
        ("queued", "sent", True),
        ("accepted", "queued", True),
        ("delivered", "read", True),
        ("read", "delivered", False),
        ("delivered", "undelivered", False),  # equal rank keeps the first
        ("sent", "sent", False),
        ("sent", "partially_delivered", False),  # unknown never moves
        ("failed", "queued", False),
    ],
)
def test_advances(current, incoming, moves):
    assert advances(rank(current), rank(incoming)) is moves


def test_unknown_current_is_moved_by_any_known_status():
    assert advances(UNKNOWN_RANK, rank("accepted"))
    assert not advances(UNKNOWN_RANK, rank("brand_new_status"))


@pytest.mark.parametrize(
    ("current", "incoming", "conflict"),
    [
        ("delivered", "undelivered", True),
        ("failed", "delivered", True),
        ("canceled", "failed", True),
        ("delivered", "delivered", False),
        ("sent", "delivered", False),
        ("read", "delivered", False),
        (None, "delivered", False),
        ("delivered", "read", False),
    ],
)
def test_conflict(current, incoming, conflict):
    assert is_conflict(current, incoming) is conflict
