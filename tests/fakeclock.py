"""libfaketime without its `faketime` wrapper.

The wrapper keeps a semaphore and a shared-memory segment named after its own
pid in /dev/shm and refuses to start ("faketime: sem_open: File exists") when a
run that was killed left them behind for a pid now reused. The library needs
only its two variables; each process then keeps its own fake clock, which is
all these tests ask of it."""
from pathlib import Path

LIB = next(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))


def env(when):
    """The environment that runs a dynamically linked program at `when`
    (libfaketime's FAKETIME syntax: "2026-12-07 10:00:00" frozen, "-10d" offset)."""
    return {"LD_PRELOAD": str(LIB), "FAKETIME": when}
