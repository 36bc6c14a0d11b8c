#!/usr/bin/env python3
"""An independent reader of eventlog format v1, written from
docs/eventlog-format.md alone, run against the golden segments.

If it agrees with the Rust code on every crc, digest, chain head and seal,
the document describes the bytes. Needs `pip install blake3`.

    python3 eventlog/tests/data/check_format.py eventlog/tests/data/v1
"""
import os
import struct
import sys
import zlib

import blake3


def check_idx(directory, name, seg, seal_pos, positions):
    path = os.path.join(directory, name[:20] + ".idx")
    if not os.path.exists(path):
        return
    b = open(path, "rb").read()
    assert b[:8] == b"CAIRNIDX" and struct.unpack_from("<H", b, 8)[0] == 1
    assert zlib.crc32(b[:-4]) == struct.unpack_from("<I", b, len(b) - 4)[0], "idx crc"
    seal_crc, base, count, pos, flen = struct.unpack_from("<IQQQQ", b, 12)
    assert seal_crc == struct.unpack_from("<I", seg, seal_pos)[0]
    assert (base, count, pos, flen) == (int(name[:20]), len(positions), seal_pos, len(seg))
    assert list(struct.unpack_from(f"<{count}I", b, 64)) == positions
    print(f"{path}: {count} positions match")


def check(directory):
    h = blake3.blake3(b"cairn eventlog v1 genesis").digest()
    expected = 1
    names = sorted(n for n in os.listdir(directory) if n.endswith(".seg"))
    for name in names:
        b = open(os.path.join(directory, name), "rb").read()
        assert b[:8] == b"CAIRNLOG", name
        version, hlen = struct.unpack_from("<HH", b, 8)
        assert (version, hlen) == (1, 72), name
        assert zlib.crc32(b[:68]) == struct.unpack_from("<I", b, 68)[0], name
        base = struct.unpack_from("<Q", b, 16)[0]
        assert base == int(name[:20]) == expected, name
        assert b[32:64] == h, f"{name}: prev_chain"
        p = 72
        count = 0
        positions = []
        while p < len(b):
            crc, ln, off, ts, kind, flags, schema, res = struct.unpack_from("<IIQQBBHI", b, p)
            assert zlib.crc32(b[p + 4 : p + 64 + ln]) == crc, f"{name}@{p}: crc"
            assert flags == 0 and res == 0
            end = (64 + ln + 7) & ~7
            assert b[p + 64 + ln : p + end] == bytes(end - 64 - ln), "padding"
            assert b[p + 32 : p + 64] == h, f"{name}@{p}: prev"
            if kind == 1:
                positions.append(p)
                assert off == expected
                payload_digest = blake3.blake3(b[p + 64 : p + 64 + ln]).digest()
                d = blake3.blake3(
                    b[p + 4 : p + 32] + payload_digest,
                    derive_key_context="cairn eventlog v1 record",
                ).digest()
                h = blake3.blake3(h + d).digest()
                expected += 1
                count += 1
                print(f"{name} record {off}: {ln} bytes, ts {ts}, schema {schema}, h={h.hex()}")
            else:
                assert kind == 2
                last, n, lo, hi = struct.unpack_from("<QQQQ", b, p + 64)
                assert last == off == expected - 1 and n == count
                assert b[p + 96 : p + 128] == h, "seal chain head"
                assert b[p + 128 : p + 160] == blake3.blake3(b[:p]).digest(), "seal digest"
                assert p + end == len(b), "bytes after the seal"
                print(f"{name} seal: last {last}, {n} records, ts {lo}..{hi}")
                check_idx(directory, name, b, p, positions)
            p += end
    print("head", expected - 1, h.hex())


if __name__ == "__main__":
    check(sys.argv[1])
