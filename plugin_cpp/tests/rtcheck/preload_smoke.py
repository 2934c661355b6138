"""libidaw_rtcheck.so under LD_PRELOAD in a Python process: it loads, stays out of the way, and counts.

Run by ctest as `LD_PRELOAD=.../libidaw_rtcheck.so python3 preload_smoke.py`. The Python tests install the hook
through idaw_core.set_rt_section_hook(address); this only checks the library itself inside CPython: threads, the
GIL and the allocator all run through the interposed functions without deadlock, and nothing is counted outside a
section.
"""

from __future__ import annotations

import ctypes
import sys
import threading


def main() -> int:
    lib = ctypes.CDLL(None)  # the global scope, where a preloaded library's symbols live
    try:
        section = lib.idaw_rtcheck_section
    except AttributeError:
        print("libidaw_rtcheck.so is not loaded: run with LD_PRELOAD=<path to it>", file=sys.stderr)
        return 1
    violations = lib.idaw_rtcheck_violations
    violations.restype = ctypes.c_ulonglong
    last = lib.idaw_rtcheck_last_violation
    last.restype = ctypes.c_char_p
    section.argtypes = [ctypes.c_int]
    lib.idaw_rtcheck_reset()

    # Outside any section: threads contending for a lock and allocating must run normally and count nothing.
    lock = threading.Lock()
    total = [0]

    def work() -> None:
        for _ in range(5000):
            with lock:
                total[0] += len(bytearray(50_000))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if total[0] != 4 * 5000 * 50_000 or violations() != 0:
        print(f"outside a section: total {total[0]}, violations {violations()}", file=sys.stderr)
        return 1

    # Inside a section (entered by hand here), a 1 MiB allocation goes to malloc and must be counted.
    section(1)
    buffer = bytearray(1 << 20)
    section(0)
    if violations() < 1:
        print(f"allocating {len(buffer)} bytes inside a section was not counted", file=sys.stderr)
        return 1
    print(f"ok: {violations()} violations inside the section, last in {last().decode()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
