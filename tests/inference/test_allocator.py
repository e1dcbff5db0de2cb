"""keep_large_buffers: glibc keeps freed 512 px activations for reuse instead of unmapping them."""

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import numpy as np
    from s5geo.inference.allocator import keep_large_buffers

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS:"))

    applied = keep_large_buffers()
    before = rss_mb()
    a = np.ones(128 << 20, dtype=np.uint8)  # 128 MB, above glibc's default mmap limit (32 MB)
    del a
    print(applied, rss_mb() - before)
    """
)


def _run(env_value: str | None) -> tuple[bool, int]:
    env = {"PATH": "/usr/bin:/bin"}
    if env_value is not None:
        env["S5GEO_KEEP_LARGE_BUFFERS"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt, Linux only")
def test_freed_large_buffers_stay_for_reuse_unless_switched_off() -> None:
    applied, kept_mb = _run(None)
    assert applied
    # Kept: the next forward reuses these pages instead of faulting fresh zeroed ones in.
    assert kept_mb >= 120
    applied, kept_mb = _run("0")
    assert not applied
    assert kept_mb < 20  # glibc's default: unmapped on free
