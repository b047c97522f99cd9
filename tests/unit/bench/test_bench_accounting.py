"""The benchmark's CPU accounting (bench/env.py), which the drain's cost-per-callback column
rests on."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench import env


def test_cpu_seconds_counts_this_process_spinning():
    before = env.cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    spent = env.cpu_seconds(os.getpid()) - before
    assert 0.15 <= spent <= 1.0


def test_cpu_seconds_of_a_gone_process_is_zero():
    assert env.cpu_seconds(2**22 + 12345) == 0.0


def test_cpu_used_counts_new_processes_from_zero_and_ignores_vanished_ones():
    before = {"workers": {10: 1.0, 11: 2.0}, "Redis": {20: 5.0}}
    after = {"workers": {10: 1.5, 12: 0.25}, "Redis": {20: 5.5}}
    assert env.cpu_used(before, after) == {"workers": 0.75, "Redis": 0.5}


def test_pids_named_finds_this_process_by_its_command_name():
    comm = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert os.getpid() in env.pids_named(comm)


def test_machine_ticks_move_forward_and_steal_is_part_of_the_total():
    total, stolen = env.machine_ticks()
    time.sleep(0.05)
    total2, stolen2 = env.machine_ticks()
    assert total2 > total
    assert 0 <= stolen <= total
    assert stolen2 >= stolen
