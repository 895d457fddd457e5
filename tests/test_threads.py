"""The default thread count follows the cores this process may use, the processes torchrun
started beside it and the load average; an explicit count is taken as it is."""

from __future__ import annotations

import os

import pytest
import torch

from conftest import tiny_config
from textcnn import threads
from textcnn.config import from_dict
from textcnn.modality import load_datasets
from textcnn.runs import train_and_evaluate


@pytest.mark.parametrize(("cores", "local", "load", "expected"), [
    (2, 1, 0.0, 2), (2, 1, 0.9, 1), (2, 1, 6.0, 1), (16, 1, 10.2, 6), (16, 1, 30.0, 1),
    (2, 2, 0.0, 1), (8, 2, 0.0, 4), (8, 3, 0.0, 2), (1, 1, 0.0, 1), (1, 4, 0.0, 1)])
def test_choice_shares_the_cores(cores, local, load, expected):
    choice = threads.choose_threads(cores=cores, local_processes=local, load=load, environ={})
    assert choice.count == expected
    assert f"{cores} usable core" in choice.reason


def test_an_explicit_count_wins_over_the_machine():
    assert threads.choose_threads(5, cores=2, load=9.0, environ={}).count == 5
    assert threads.choose_threads(environ={"OMP_NUM_THREADS": "3"}, load=9.0).count == 3
    # an unusable OMP_NUM_THREADS is ignored rather than trusted
    assert threads.choose_threads(cores=2, local_processes=1, load=0.0,
                                  environ={"OMP_NUM_THREADS": "many"}).count == 2


def test_torchrun_local_world_size_is_read_from_the_environment():
    choice = threads.choose_threads(cores=4, load=0.0, environ={"LOCAL_WORLD_SIZE": "2"})
    assert choice.count == 2 and "2 processes" in choice.reason


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_usable_cores_follow_the_affinity(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert threads.usable_cores() == 1
    assert threads.choose_threads(load=0.0, environ={}).count == 1


def test_set_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert threads.set_threads(1).count == 1 and torch.get_num_threads() == 1
        choice = threads.set_threads(0)
        assert torch.get_num_threads() == choice.count <= threads.usable_cores()
    finally:
        torch.set_num_threads(before)


def test_the_training_log_says_how_many_and_why(sst2_slice):
    lines: list[str] = []
    config = from_dict(tiny_config(sst2_slice, epochs=1, threads=1))
    train_and_evaluate(config, load_datasets(config), log=lines.append, write_folder=False)
    assert any("; 1 thread (asked for);" in line for line in lines), lines[:3]


def test_the_load_this_process_made_does_not_count_as_another_programs(monkeypatch):
    # a load average of 1.2, 0.8 of it this process's own data loading: 0.4 left for the others
    monkeypatch.setattr(threads, "_load_average", lambda: 1.2)
    monkeypatch.setattr(threads, "own_load", lambda: 0.8)
    choice = threads.choose_threads(cores=2, local_processes=1, environ={})
    assert choice.count == 2 and "load average 0.4" in choice.reason
    monkeypatch.setattr(threads, "own_load", lambda: 0.0)
    assert threads.choose_threads(cores=2, local_processes=1, environ={}).count == 1


def test_own_load_follows_the_kernels_one_minute_average():
    # a process that kept one core busy for a minute adds 1 - 1/e to the 1-minute average
    assert threads.own_load(cpu_seconds=60.0, age=60.0) == pytest.approx(0.632, abs=1e-3)
    assert threads.own_load(cpu_seconds=0.0, age=30.0) == 0.0
    assert threads.own_load(cpu_seconds=1.0, age=0.0) == 0.0
