"""The spool hands back every synced message once, in order, from memory or from disk,
across segment rotations, partial commits and a crash (reopen)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.spool import Spool, SpoolError

ops = st.lists(st.one_of(
    st.tuples(st.just("append"), st.lists(st.binary(max_size=300), min_size=1, max_size=20)),
    st.tuples(st.just("sync"), st.none()),
    st.tuples(st.just("read"), st.integers(1, 40)),
    st.tuples(st.just("crash"), st.none()),
), max_size=40)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(ops=ops)
def test_every_synced_message_is_read_once_in_order(ops: list[tuple[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        sp = Spool(d, segment_bytes=2000)
        synced: list[bytes] = []
        unsynced: list[bytes] = []
        got: list[bytes] = []
        keys: set[str] = set()
        pos = sp.committed
        for op, arg in ops:
            if op == "append":
                assert isinstance(arg, list)
                sp.append_many([("devices/d/telemetry", p, 1) for p in arg])
                unsynced += arg
            elif op == "sync":
                sp.sync()
                synced += unsynced
                unsynced = []
            elif op == "read":
                assert isinstance(arg, int)
                records, pos = sp.read(pos, max_records=arg)
                got += [r.payload for r in records]
                assert not keys & {r.key for r in records}
                keys |= {r.key for r in records}
                sp.commit(pos)
            else:  # crash: close without the final sync, reopen, resume from committed
                sp._wfh.close()
                sp._lock_fh.close()
                sp = Spool(d, segment_bytes=2000)
                # Appended but never synced may or may not have reached the disk (it was
                # never acknowledged): whatever is found is complete, whatever is not is gone.
                pos = sp.committed
                records, _ = sp.read(pos, max_records=10**6)
                synced += unsynced[:max(0, len(got) + len(records) - len(synced))]
                unsynced = []
        records, pos = sp.read(pos, max_records=10**6)
        got += [r.payload for r in records]
        assert got == synced  # nothing unsynced is handed out
        sp.sync()
        records, pos = sp.read(pos, max_records=10**6)
        assert got + [r.payload for r in records] == synced + unsynced
        sp.close()


def test_second_worker_cannot_open_a_spool_in_use(tmp_path: Path) -> None:
    with Spool(tmp_path), pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path)
