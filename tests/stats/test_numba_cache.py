"""Where numba caches the compiled kernels; with nowhere to cache, importing them must not fail."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ..conftest import drop_root_overrides

pytest.importorskip("numba")
import numba

from pipeline.stats import kernels, numba_cache


def test_normal_installs_cache_where_numba_does():
    assert numba_cache.CACHE is True or isinstance(numba_cache.CACHE, str)  # this checkout is writable
    assert numba_cache.CACHE is True or os.environ.get("NUMBA_CACHE_DIR") is None


def test_cache_decision():
    calls = []
    assert numba_cache.choose_cache(lambda: True, lambda: calls.append(1)) is True
    assert not calls  # the private directory is not even made when numba can cache

    def only_in(path):
        return lambda: numba.config.CACHE_DIR == path

    before = numba.config.CACHE_DIR
    assert numba_cache.choose_cache(only_in("/some/dir"), lambda: "/some/dir") == "/some/dir"
    assert numba.config.CACHE_DIR == before  # restored: other numba users in the process are unaffected
    assert numba_cache.choose_cache(lambda: False, lambda: "/some/dir") is False
    assert numba_cache.choose_cache(lambda: False, lambda: None) is False
    assert numba.config.CACHE_DIR == before


def test_no_locator_is_detected_not_raised(monkeypatch, tmp_path):
    """Simulate "no locator available" in numba itself: no locator finds a place to cache.

    As root (as the tests run here) chmod cannot make a directory unwritable, so the locators
    are taken away instead; the subprocess test below does it for real by dropping root's
    permission-override capabilities.
    """
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # renamed across numba versions
    user_dir = getattr(caching, "UserProvidedCacheLocator", None) or caching._UserProvidedCacheLocator
    monkeypatch.setattr(numba_cache.tempfile, "tempdir", str(tmp_path))  # the private cache dir goes here
    monkeypatch.setattr(impl, "_locator_classes", [])
    with pytest.raises(RuntimeError, match="no locator available"):
        numba.njit(cache=True)(numba_cache.probe)  # what an unconditional cache=True does at import
    assert numba_cache.cache_available() is False
    assert numba_cache.choose_cache() is False

    # only NUMBA_CACHE_DIR's locator left (as when the package dir and HOME are read-only)
    monkeypatch.setattr(impl, "_locator_classes", [user_dir])
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    private = str(tmp_path / f"hotpixels-numba-{os.getuid()}")
    assert numba_cache.choose_cache() == private
    assert numba.config.CACHE_DIR == ""

    monkeypatch.setattr(numba_cache, "CACHE", private)

    @numba_cache.jit(nogil=True)
    def twice(x):
        return 2 * x

    assert twice(21) == 42
    assert twice.stats.cache_path.startswith(private)
    assert any(Path(twice.stats.cache_path).iterdir())  # compiled code saved there


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_private_cache_dir_is_private(monkeypatch, tmp_path):
    monkeypatch.setattr(numba_cache.tempfile, "tempdir", str(tmp_path))
    path = numba_cache.private_cache_dir()
    assert path == str(tmp_path / f"hotpixels-numba-{os.getuid()}")
    assert os.stat(path).st_mode & 0o777 == 0o700
    assert numba_cache.private_cache_dir() == path  # reused across processes and runs
    os.chmod(path, 0o777)  # anyone could plant cached code there: not used
    fresh = numba_cache.private_cache_dir()
    assert fresh != path and Path(fresh).parent == tmp_path and os.stat(fresh).st_mode & 0o777 == 0o700


CHILD = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import pipeline
    from pipeline import stats
    from pipeline.stats import kernels, numba_cache
    from pipeline.stats.moments import merge_numpy
    assert pipeline.__file__.startswith(sys.argv[1]), pipeline.__file__
    try:
        open(os.path.join(os.path.dirname(kernels.__file__), "probe"), "w").close()
        print(json.dumps({"writable": True}))
        sys.exit()
    except OSError:
        pass
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 65535, (3, 6, 7), endpoint=True, dtype=np.uint16)
    a = stats.stats_of_stack(stack)  # accumulate_rows and to_stats_rows
    b = stats.stats_of_stack(stack[:2])
    merged = a.merge(b)  # merge_flat
    ref = merge_numpy(a, b)
    same = bool(np.array_equal(merged.mean, ref.mean) and np.array_equal(merged.m2, ref.m2))
    hits = sum(sum(f.stats.cache_hits.values()) for f in (kernels.to_stats_rows, kernels.merge_flat))
    print(json.dumps({"writable": False, "cache": numba_cache.CACHE, "same": same, "hits": hits}))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="POSIX permissions and Linux capabilities")
def test_read_only_install_imports_and_caches_in_tmp(tmp_path):
    """The package in a read-only directory, HOME unwritable, no NUMBA_CACHE_DIR: no crash, cache in TMPDIR."""
    ro = tmp_path / "ro"
    shutil.copytree(Path(kernels.__file__).parents[1], ro / "pkg" / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (ro / "home").mkdir()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    subprocess.run(["chmod", "-R", "a-w", str(ro)], check=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NUMBA_CACHE") and k not in ("XDG_CACHE_HOME", "PYTHONPATH", "TMPDIR")}
    # HOME=/nonexistent would do as an ordinary user; root owns / and could create it, so a read-only HOME
    env.update(HOME=str(ro / "home"), PYTHONPATH=str(ro / "pkg"), TMPDIR=str(scratch), PYTHONDONTWRITEBYTECODE="1")
    preexec = drop_root_overrides if os.geteuid() == 0 else None

    def run():
        out = subprocess.run([sys.executable, "-c", CHILD, str(ro / "pkg")], cwd=ro / "pkg", env=env,
                             preexec_fn=preexec, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        import json
        return json.loads(out.stdout.strip().splitlines()[-1])

    try:
        first = run()
        if first["writable"]:
            pytest.skip("cannot make a directory read-only here (root with permission overrides)")
        private = str(scratch / f"hotpixels-numba-{os.getuid()}")
        assert first == {"writable": False, "cache": private, "same": True, "hits": 0}
        assert any(Path(private).rglob("*.nbi"))
        second = run()
        assert second["cache"] == private and second["same"] and second["hits"] > 0  # the cache is reused
        # "nowhere at all to cache" cannot be staged here: with TMPDIR read-only, tempfile picks /tmp
        # (writable by everyone); test_cache_decision and test_no_locator_is_detected_not_raised cover it
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(tmp_path)], check=True)
