"""The thread count is chosen deliberately and can be overridden."""

from __future__ import annotations

import pytest

from greencoder.core import threads
from greencoder.core.errors import InputError


def test_default_leaves_half_the_cpus(monkeypatch):
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    for cpus, expected in [(1, 1), (2, 1), (4, 2), (8, 4), (64, 4)]:
        monkeypatch.setattr(threads, "available_cpus", lambda cpus=cpus: cpus)
        assert threads.default_thread_count() == expected


def test_environment_overrides_the_default(monkeypatch):
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert threads.default_thread_count() == 3
    monkeypatch.setenv(threads.THREADS_ENV, "many")
    with pytest.raises(InputError, match="thread count must be a whole number, got 'many'"):
        threads.default_thread_count()
    with pytest.raises(InputError, match="at least 1"):
        threads.parse_thread_count(0)


def test_blas_variables_set_but_user_values_kept(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    threads.set_thread_environment(2)
    import os

    assert os.environ["OMP_NUM_THREADS"] == "7" and os.environ["MKL_NUM_THREADS"] == "2"


def test_cgroup_cpu_quota_caps_the_available_cpus(tmp_path, monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(16)))
    quota = tmp_path / "cpu.max"
    quota.write_text("250000 100000\n")
    assert threads.available_cpus(str(quota)) == 3
    quota.write_text("max 100000\n")
    assert threads.available_cpus(str(quota)) == 16
    assert threads.available_cpus(str(tmp_path / "missing")) == 16
