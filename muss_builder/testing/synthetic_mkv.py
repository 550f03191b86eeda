"""An MKV whose video packets mostly carry no timestamp, for tests.

Matroska can store several frames in one block ("lacing"); only the block has a timestamp,
and without a track DefaultDuration a demuxer cannot time the other frames: ffmpeg returns
them with no presentation or decode time. ffmpeg never writes laced video, so this rewrites
an MKV that ffmpeg made: frames after each keyframe are laced four to a block (Xiph lacing),
DefaultDuration is dropped, and so are SeekHead and Cues, whose byte offsets would be wrong,
and the CRC-32 elements ffmpeg puts first in each top-level element, whose sums would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

_SEGMENT, _TRACKS, _CLUSTER = 0x18538067, 0x1654AE6B, 0x1F43B675
_TRACK_ENTRY, _SIMPLE_BLOCK, _DEFAULT_DURATION, _CRC32 = 0xAE, 0xA3, 0x23E383, 0xBF
_DROPPED = {0x114D9B74, 0x1C53BB6B, 0xEC, _CRC32}  # SeekHead, Cues, Void, CRC-32
_LACE = 4  # frames per laced block


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int, int]:
    """(value, next position, length) of the EBML variable-length integer at ``pos``."""
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, pos + length, length


def _elements(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(id, payload) of the EBML elements one after another in ``data``."""
    pos = 0
    while pos < len(data):
        eid, pos, _ = _vint(data, pos, True)
        size, pos, n = _vint(data, pos, False)
        if size == (1 << (7 * n)) - 1:  # unknown size: runs to the end of the parent
            size = len(data) - pos
        yield eid, data[pos : pos + size]
        pos += size


def _element(eid: int, payload: bytes) -> bytes:
    size = len(payload)
    length = next(k for k in range(1, 9) if size < (1 << (7 * k)) - 1)
    encoded = ((1 << (7 * length)) | size).to_bytes(length, "big")
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + encoded + payload


def _laced(blocks: list[bytes]) -> bytes:
    """One SimpleBlock holding the frames of ``blocks`` (one-byte track numbers), with the
    first block's timestamp and flags, Xiph-laced."""
    if len(blocks) == 1:
        return _element(_SIMPLE_BLOCK, blocks[0])
    head, frames = blocks[0][:4], [b[4:] for b in blocks]
    sizes = b"".join(b"\xff" * (len(f) // 255) + bytes([len(f) % 255]) for f in frames[:-1])
    payload = head[:3] + bytes([head[3] | 0x02, len(frames) - 1]) + sizes + b"".join(frames)
    return _element(_SIMPLE_BLOCK, payload)


def _cluster(payload: bytes) -> bytes:
    out, group = bytearray(), []
    for eid, body in _elements(payload):
        if eid == _CRC32:
            continue
        if eid != _SIMPLE_BLOCK:
            out += _element(eid, body)
            continue
        if body[3] & 0x80 or len(group) >= _LACE:  # a keyframe starts a block of its own
            if group:
                out += _laced(group)
            group = []
        group.append(body)
    if group:
        out += _laced(group)
    return _element(_CLUSTER, bytes(out))


def _segment(payload: bytes) -> bytes:
    out = bytearray()
    for eid, body in _elements(payload):
        if eid in _DROPPED:
            continue
        if eid == _TRACKS:
            entries = b"".join(
                _element(
                    tid,
                    b"".join(_element(i, b) for i, b in _elements(entry) if i != _DEFAULT_DURATION),
                )
                for tid, entry in _elements(body)
                # only a TrackEntry holds elements: a CRC-32's four bytes would be read as
                # element headers (and fail when the sum's first byte claims a long id)
                if tid == _TRACK_ENTRY
            )
            out += _element(eid, entries)
        elif eid == _CLUSTER:
            out += _cluster(body)
        else:
            out += _element(eid, body)
    return _element(_SEGMENT, bytes(out))


def make_laced_mkv(source: str | Path, path: str | Path) -> Path:
    """Rewrite ``source`` (an MKV with one video track, as ffmpeg writes it) to ``path`` with
    its frames laced: only one packet in four (and every keyframe) has a timestamp."""
    path = Path(path)
    data = Path(source).read_bytes()
    path.write_bytes(
        b"".join(
            _segment(body) if eid == _SEGMENT else _element(eid, body)
            for eid, body in _elements(data)
        )
    )
    return path
