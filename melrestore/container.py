"""Keeping everything of a file but the repaired samples: tags, chunks and metadata.

PCM, float, A-law and u-law WAV (RIFF, RF64/BW64, Wave64) and AIFF files are repaired by patching
the gap samples into a byte copy of the original, so every other byte (LIST/INFO, ID3, cue, BEXT
chunks, headers) is kept.  Other formats are rewritten by libsndfile; then the input's chunks
(ADPCM WAV and AIFF), metadata blocks and leading ID3v2 tag (FLAC) or tags (MP3) are copied
over byte for byte, and Ogg files' Vorbis comments with mutagen.
"""

from __future__ import annotations

import functools
import io
import mmap
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import replaced_atomically

# Sample encodings we can patch in place: subtype -> bytes per sample.  A-law and u-law (G.711)
# encode each sample alone in one byte, so they are patched like PCM.
SAMPLE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                "ALAW": 1, "ULAW": 1}
G711 = ("ALAW", "ULAW")
_AIFC_ENDIAN = {b"NONE": ">", b"twos": ">", b"sowt": "<", b"fl32": ">", b"FL32": ">", b"fl64": ">", b"FL64": ">",
                b"ulaw": ">", b"ULAW": ">", b"alaw": ">", b"ALAW": ">"}  # G.711: one byte, no byte order


@dataclass
class PcmLayout:
    """Where the samples of an uncompressed WAV/Wave64/AIFF file lie, and how they are stored."""

    data_offset: int  # byte offset of the first sample
    declared_bytes: int  # sample data size the header declares
    available_bytes: int  # sample data actually present in the file
    endian: str  # "<" or ">"
    unexplained_bytes: int = 0  # bytes after the declared samples that are no chunk (samples a header never counted?)


# Sony Wave64 names its chunks by GUID and sizes them in 64 bits, header included.
_W64_RIFF = b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00"
_W64_WAVE = b"wave\xf3\xac\xd3\x11\x8c\xd1\x00\xc0\x4f\x8e\xdb\x8a"
_W64_DATA = b"data\xf3\xac\xd3\x11\x8c\xd1\x00\xc0\x4f\x8e\xdb\x8a"
# RF64/BW64 (WAV past 4 GB): a 32-bit size of all ones means "see the ds64 chunk".
_SEE_DS64 = 0xFFFFFFFF


def pcm_layout(path: str | Path) -> PcmLayout | None:
    """Parse the chunks of a WAV (RIFF, RIFX, RF64 or BW64), a Wave64 or an AIFF/AIFC file; None for
    anything else."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(40)
        if head[:16] == _W64_RIFF and head[24:40] == _W64_WAVE:
            f.seek(40)
            found = _wave64_data(f)
            unexplained = 0
        else:
            f.seek(12)
            found = _chunked_data(f, head)
            unexplained = 0 if found is None else _unexplained_tail(f, found[0] + found[1], size)
    if found is None:
        return None
    start, data_bytes, endian = found
    return PcmLayout(start, data_bytes, max(0, min(data_bytes, size - start)), endian, unexplained)


def _unexplained_tail(f, end: int, size: int) -> int:
    """How many bytes follow the sample data ending at ``end`` without being a chunk: a recorder
    that stopped before it rewrote its header (a data size of 0, or of an earlier moment) leaves
    samples there that every reader ignores."""
    end += end & 1  # chunks are padded to an even length
    if end >= size:
        return 0
    f.seek(end)
    chunk = f.read(8)
    room = size - end - 8 + 1  # a chunk's size may leave off its pad byte
    if len(chunk) == 8 and all(32 <= c < 127 for c in chunk[:4]) and min(struct.unpack("<I", chunk[4:])[0], struct.unpack(">I", chunk[4:])[0]) <= room:
        return 0  # another chunk (LIST, id3, ANNO, ...), as WAV and AIFF files may end
    return size - end


def _chunked_data(f, head: bytes) -> tuple[int, int, str] | None:
    """Where the samples of a RIFF-style WAV or an AIFF start, how many bytes the header declares,
    and their byte order; ``f`` is just past the 12-byte file header ``head``."""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        endian, data_id, is_aiff = (">" if head[:4] == b"RIFX" else "<"), b"data", False
    elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        endian, data_id, is_aiff = ">", b"SSND", True
    else:
        return None
    size_endian = endian
    ds64_data_bytes = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        chunk_id, chunk_size = chunk[:4], struct.unpack(size_endian + "I", chunk[4:])[0]
        start = f.tell()
        if chunk_id == b"ds64":
            ds64_data_bytes = struct.unpack("<Q", f.read(16)[8:])[0]
        if chunk_id == b"COMM" and head[8:12] == b"AIFC":
            comm = f.read(min(chunk_size, 22))
            endian = _AIFC_ENDIAN.get(comm[18:22])
            if endian is None:
                return None  # a compressed AIFC: not patched in place
        if chunk_id == data_id:
            if chunk_size == _SEE_DS64 and ds64_data_bytes is not None:
                chunk_size = ds64_data_bytes
            if is_aiff:
                offset = struct.unpack(">I", f.read(4))[0]
                start, chunk_size = start + 8 + offset, chunk_size - 8 - offset
            return start, chunk_size, endian
        f.seek(start + chunk_size + (chunk_size & 1))


def _wave64_data(f) -> tuple[int, int, str] | None:
    """The same for a Wave64 file, ``f`` just past its 40-byte header (chunks 8-byte aligned)."""
    while True:
        chunk = f.read(24)
        if len(chunk) < 24:
            return None
        chunk_size = struct.unpack("<Q", chunk[16:])[0]  # the 24-byte chunk header included
        if chunk_size < 24:
            return None
        if chunk[:16] == _W64_DATA:
            return f.tell(), chunk_size - 24, "<"
        f.seek(f.tell() - 24 + chunk_size + (-chunk_size % 8))


def g711_bytes(samples: np.ndarray, subtype: str) -> bytes:
    """Float ``samples`` (``[n, channels]``) as A-law or u-law bytes, encoded by libsndfile itself
    (clipped to [-1, 1] first: libsndfile 1.2 encodes a float past full scale to a wrong
    code, 1.01 in A-law to -0.17, and crashes on NaN)."""
    import soundfile as sf

    encoded = io.BytesIO()
    samples = np.clip(np.nan_to_num(np.asarray(samples, np.float32)), -1.0, 1.0)
    sf.write(encoded, samples, 8000, format="RAW", subtype=subtype)
    return encoded.getvalue()


def g711_round(samples: np.ndarray, subtype: str) -> np.ndarray:
    """Float ``samples`` (``[n, channels]``) as an A-law or u-law file stores them: encoded, then
    decoded again, as float32."""
    import soundfile as sf

    samples = np.asarray(samples)
    decoded, _ = sf.read(io.BytesIO(g711_bytes(samples, subtype)), dtype="float32", always_2d=True,
                         format="RAW", subtype=subtype, samplerate=8000, channels=samples.shape[1])
    return decoded


def _encode(samples: np.ndarray, subtype: str, endian: str) -> bytes:
    """``samples`` as read by :class:`melrestore.audio.AudioFile` (int32 shifted up, or float) in the file's encoding."""
    if subtype in G711:
        return g711_bytes(samples, subtype)
    if subtype in ("FLOAT", "DOUBLE"):
        return samples.astype(f"{endian}f{SAMPLE_BYTES[subtype]}").tobytes()
    if subtype == "PCM_U8":
        return ((samples >> 24) + 128).astype(np.uint8).tobytes()
    if subtype == "PCM_24":
        wide = (samples >> 8).astype(f"{endian}i4").view(np.uint8).reshape(*samples.shape, 4)
        return (wide[..., :3] if endian == "<" else wide[..., 1:]).tobytes()
    width = SAMPLE_BYTES[subtype]
    return (samples >> (32 - 8 * width)).astype(f"{endian}i{width}").tobytes()


def can_patch(subtype: str, layout: PcmLayout | None) -> bool:
    return layout is not None and subtype in SAMPLE_BYTES


def patch_samples(path: str | Path, layout: PcmLayout, subtype: str, patches) -> None:
    """Overwrite the file's samples from ``start`` on with ``samples`` (``[n, channels]``, as read by
    :class:`melrestore.audio.AudioFile`) for each ``(start, samples)`` of ``patches``."""
    with open(path, "r+b") as f:
        for start, samples in patches:
            f.seek(layout.data_offset + start * SAMPLE_BYTES[subtype] * samples.shape[1])
            f.write(_encode(samples, subtype, layout.endian))


def copy_tags(source: str | Path, target: str | Path, format: str | None = None) -> None:
    """Copy the tags, and the chunks or metadata blocks that are not the audio's, of ``source``
    onto ``target``, both files of libsndfile's ``format`` (``"FLAC"``, ``"OGG"``, ``"MP3"``, or a
    WAV or AIFF re-encoded: ADPCM, GSM 6.10; read by their contents, not their names: a FLAC file
    named ``.wav`` is FLAC)."""
    import mutagen

    if format == "MP3":
        _copy_mp3_tag_blocks(source, target)
        return
    with open(source, "rb") as f:
        head = f.read(12)
        f.seek(_id3v2_length(head[:10]))
        is_flac = f.read(4) == b"fLaC"
    if is_flac:
        _copy_flac_metadata(source, target)
        return
    if head[:4] in _IFF_SIZE_ORDER and head[8:12] in _AUDIO_CHUNKS:
        _copy_iff_chunks(source, target)
        return
    options = _tag_types(format)
    src = mutagen.File(source, options=options)
    if src is None or src.tags is None:
        return
    dst = mutagen.File(target, options=options)  # Vorbis comments (OGG): key/value pairs
    if dst.tags is None:
        dst.add_tags()
    dst.tags.clear()
    dst.tags.extend(src.tags)
    dst.save()


def _copy_span(f, out, start: int, length: int) -> None:
    """``length`` bytes of ``f`` from ``start`` on, onto ``out``, a MiB at a time."""
    f.seek(start)
    while length > 0 and (block := f.read(min(length, 1 << 20))):
        out.write(block)
        length -= len(block)


def _replace_with(target: Path, write) -> None:
    """Write a new ``target`` with ``write(out)`` into a temporary file beside it, then rename it
    over ``target``."""
    with replaced_atomically(target) as tmp, open(tmp, "wb") as out:
        write(out)


# RIFF (WAV) and AIFF files re-encoded by libsndfile (ADPCM, GSM 6.10): the byte order of their
# chunk sizes, and the chunks that describe or hold the samples (the sample data last), which
# libsndfile writes anew.  Every other chunk (LIST, id3, bext, cue, smpl, iXML, NAME, ANNO, MARK,
# ...) is the input's, byte for byte.  (libsndfile writes no ADPCM in RF64; a Wave64 file's
# GUID-named chunks are not carried over.)
_IFF_SIZE_ORDER = {b"RIFF": "<", b"RIFX": ">", b"FORM": ">"}
_AUDIO_CHUNKS = {b"WAVE": (b"fmt ", b"fact", b"data"), b"AIFF": (b"COMM", b"SSND"), b"AIFC": (b"FVER", b"COMM", b"SSND")}


def _iff_chunks(f, size: int, order: str) -> list[tuple[bytes, int, int]]:
    """``(id, offset, length)`` of each chunk of a RIFF or AIFF file of ``size`` bytes (the length
    with its 8-byte header and pad byte, cut at the end of the file)."""
    chunks, pos = [], 12
    while pos + 8 <= size:
        f.seek(pos)
        header = f.read(8)
        length = 8 + struct.unpack(order + "I", header[4:])[0]
        length += length & 1
        chunks.append((header[:4], pos, min(length, size - pos)))
        pos += length
    return chunks


def _copy_iff_chunks(source: str | Path, target: str | Path) -> None:
    """The chunks of the source WAV or AIFF that are not its audio's, byte for byte, into the
    target libsndfile wrote (its own format and sample chunks kept), each on the side of the
    sample data it was on."""
    target = Path(target)
    with open(source, "rb") as f, open(target, "rb") as new:
        head, new_head = f.read(12), new.read(12)
        if (head[:4], head[8:12]) != (new_head[:4], new_head[8:12]):
            raise ValueError(f"libsndfile wrote a {new_head[:4]!r}/{new_head[8:12]!r} file for a {head[:4]!r}/{head[8:12]!r} one: "
                             "its chunks cannot be carried over")
        order, audio_ids = _IFF_SIZE_ORDER[head[:4]], _AUDIO_CHUNKS[head[8:12]]
        chunks = _iff_chunks(f, os.fstat(f.fileno()).st_size, order)
        data_at = next((i for i, c in enumerate(chunks) if c[0] == audio_ids[-1]), len(chunks))
        before = [c for c in chunks[:data_at] if c[0] not in audio_ids]
        after = [c for c in chunks[data_at:] if c[0] not in audio_ids]
        if not before and not after:
            return
        new_chunks = _iff_chunks(new, os.fstat(new.fileno()).st_size, order)
        described = [c for c in new_chunks if c[0] in audio_ids[:-1]]
        samples = [c for c in new_chunks if c[0] == audio_ids[-1]][:1]
        size = 4 + sum(length for _, _, length in described + before + samples + after)
        if size > 0xFFFFFFFF:
            raise ValueError("the repaired file with its chunks would be over 4 GB, more than a RIFF or AIFF file holds")

        def write(out):
            out.write(head[:4] + struct.pack(order + "I", size) + head[8:12])
            for (_, start, length), file in ([(c, new) for c in described] + [(c, f) for c in before]
                                             + [(c, new) for c in samples] + [(c, f) for c in after]):
                _copy_span(file, out, start, length)

        _replace_with(target, write)


def _flac_metadata(f) -> tuple[int, list[tuple[int, int, int]], int]:
    """A FLAC file's leading ID3v2 tag's length (0 without one), ``(type, offset, length)`` of
    each of its metadata blocks (the 4-byte header included), and where its frames start."""
    id3 = _id3v2_length(f.read(10))
    f.seek(id3)
    if f.read(4) != b"fLaC":
        raise ValueError("not a FLAC file")
    blocks, last = [], False
    while not last:
        header = f.read(4)
        if len(header) < 4:
            raise ValueError("a FLAC file that ends in its metadata")
        last, length = bool(header[0] & 0x80), 4 + int.from_bytes(header[1:], "big")
        blocks.append((header[0] & 0x7F, f.tell() - 4, length))
        f.seek(length - 4, 1)
    return id3, blocks, f.tell()


def _copy_flac_metadata(source: str | Path, target: str | Path) -> None:
    """The source FLAC's leading ID3v2 tag and its metadata blocks but the stream's own
    description (STREAMINFO, SEEKTABLE: the target's), byte for byte, around the target's frames.
    (mutagen would write its Vorbis comments anew, with a U+FFFD for each byte that is not
    UTF-8, and drop the ID3v2 tag.)"""
    target = Path(target)
    with open(source, "rb") as f, open(target, "rb") as new:
        id3, blocks, _ = _flac_metadata(f)
        _, new_blocks, frames = _flac_metadata(new)
        own = [(new, b) for b in new_blocks if b[0] in (0, 3)]  # STREAMINFO first, then SEEKTABLE
        kept = own + [(f, b) for b in blocks if b[0] not in (0, 3)]

        def write(out):
            _copy_span(f, out, 0, id3)
            out.write(b"fLaC")
            for i, (file, (kind, start, length)) in enumerate(kept):
                file.seek(start)
                header = file.read(4)
                out.write(bytes([kind | (0x80 if i == len(kept) - 1 else 0)]) + header[1:])
                _copy_span(file, out, start + 4, length - 4)
            _copy_span(new, out, frames, os.fstat(new.fileno()).st_size - frames)

        _replace_with(target, write)


def _copy_mp3_tag_blocks(source: str | Path, target: str | Path) -> None:
    """The source MP3's tags onto the target's MPEG frames byte for byte: its ID3v2 tag before them,
    its APEv2 and ID3v1 tags after them.  (mutagen would save ID3v2.4 alone, dropping the ID3v1
    and APEv2 tags, the ID3v2.3 version and the frames it cannot translate.)"""
    with open(source, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start, end = _mp3_tag_spans(f, size)
        f.seek(0)
        head = f.read(start)
        f.seek(end)
        tail = f.read()
    if not head and not tail:
        return
    target = Path(target)
    with open(target, "rb") as frames:
        frames_start, frames_end = _mp3_tag_spans(frames, os.fstat(frames.fileno()).st_size)

        def write(out):
            out.write(head)
            _copy_span(frames, out, frames_start, frames_end - frames_start)
            out.write(tail)

        _replace_with(target, write)


def _id3v2_length(header: bytes) -> int:
    """The bytes of the ID3v2 tag whose 10-byte header is ``header`` (its size in 7-bit bytes, and a
    footer where its flags say so); 0 where ``header`` begins no tag."""
    if len(header) < 10 or header[:3] != b"ID3":
        return 0
    return 10 + ((header[6] << 21) | (header[7] << 14) | (header[8] << 7) | header[9]) + (10 if header[5] & 0x10 else 0)


def _mp3_tag_spans(f, size: int) -> tuple[int, int]:
    """Where an MP3's MPEG frames start and end, between its leading ID3v2 tag and its trailing
    APEv2 and ID3v1 tags (any of which may be absent)."""
    f.seek(0)
    start = _id3v2_length(f.read(10))
    end = size
    if end - 128 >= start:
        f.seek(end - 128)
        if f.read(3) == b"TAG":
            end -= 128
    if end - 32 >= start:
        f.seek(end - 32)
        footer = f.read(32)
        if footer[:8] == b"APETAGEX":
            tag_size, flags = struct.unpack("<I", footer[12:16])[0], struct.unpack("<I", footer[20:24])[0]
            end -= tag_size + (32 if flags & 0x80000000 else 0)
    return min(start, size), max(min(end, size), min(start, size))


def _tag_types(format: str | None) -> list | None:
    """The mutagen file types a file of libsndfile's ``format`` can be (None: let mutagen guess)."""
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.oggflac import OggFLAC
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis

    return {"FLAC": [FLAC], "MP3": [MP3], "OGG": [OggVorbis, OggOpus, OggFLAC]}.get(format)


def encoder_settings(path: str | Path, format: str | None = None) -> dict:
    """soundfile's ``compression_level`` and ``bitrate_mode`` that re-encode ``path`` (an MP3, Ogg
    Vorbis or Ogg Opus file: libsndfile's ``format``) at about its own bitrate; {} for other files.  libsndfile's defaults
    would re-encode a 320 kbps MP3 at about 160 kbps VBR and a 500 kbps Vorbis file at 128 kbps,
    lowering the quality of the whole file, not only of the gap."""
    import mutagen
    from mutagen.mp3 import MP3
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis

    try:
        source = mutagen.File(path, options=_tag_types(format))
    except mutagen.MutagenError:
        return {}
    if isinstance(source, MP3):
        return _mp3_settings(source.info)
    if isinstance(source, OggVorbis) and source.info.bitrate > 0:
        return {"compression_level": 1.0 - _vorbis_quality(source.info.sample_rate, source.info.channels, source.info.bitrate)}
    if isinstance(source, OggOpus) and source.info.length > 0:
        # Its mean bitrate (the audio pages' bytes over its length: its tags and pictures left
        # out), through libsndfile's linear map from compression_level to 256 (0) down to 6 (1)
        # kbps a channel.
        per_channel = ogg_audio_bytes(path) * 8 / source.info.length / source.info.channels
        return {"compression_level": float(np.clip(1.0 - (per_channel - 6000) / 250000, 0.0, 1.0))}
    return {}


def _mp3_settings(info) -> dict:
    """LAME's own VBR quality where its header names one (``-V 2``); else its bitrate, constant
    (or average, for a VBR file of unknown quality), through libsndfile's linear map from
    ``compression_level`` to the bitrates of the file's MPEG version."""
    from mutagen.mp3 import BitrateMode

    quality = re.search(r"-V\s*(\d)", info.encoder_settings or "")
    if info.bitrate_mode == BitrateMode.VBR and quality:
        return {"bitrate_mode": "VARIABLE", "compression_level": int(quality[1]) / 10}
    top, bottom = (320, 32) if info.sample_rate >= 32000 else (160, 8) if info.sample_rate >= 16000 else (64, 8)
    # libsndfile truncates the bitrate it computes to whole kbps: aim half a kbps above.
    level = (top - info.bitrate / 1000 - 0.5) / (top - bottom)
    mode = "AVERAGE" if info.bitrate_mode in (BitrateMode.VBR, BitrateMode.ABR) else "CONSTANT"
    return {"bitrate_mode": mode, "compression_level": float(np.clip(level, 0.0, 1.0))}


@functools.lru_cache(maxsize=64)
def _vorbis_quality(sample_rate: int, channels: int, bitrate: int) -> float:
    """The lowest libsndfile Vorbis quality (0 to 1) whose nominal bitrate reaches ``bitrate``, for
    this rate and channel count, found by encoding a few silent samples at each quality tried
    (libvorbis's nominal bitrates depend on both)."""
    import io

    import soundfile as sf
    from mutagen.oggvorbis import OggVorbis

    def nominal(quality: float) -> int:
        encoded = io.BytesIO()
        sf.write(encoded, np.zeros((64, channels), np.float32), sample_rate, format="OGG", subtype="VORBIS",
                 compression_level=1.0 - quality)
        encoded.seek(0)
        return OggVorbis(encoded).info.bitrate

    low, high = 0.0, 1.0
    if nominal(high) <= bitrate:
        return high
    for _ in range(8):  # to within 1/256 of the quality scale
        middle = (low + high) / 2
        low, high = (middle, high) if nominal(middle) < bitrate else (low, middle)
    return high


def _ogg_pages(path: str | Path):
    """``(header, size in bytes)`` of each page of an Ogg file, in order; reads only the headers."""
    with open(path, "rb") as f:
        while len(header := f.read(27)) == 27 and header[:4] == b"OggS":
            segments = f.read(header[26])
            f.seek(sum(segments), 1)
            yield header, 27 + len(segments) + sum(segments)


def ogg_audio_bytes(path: str | Path) -> int:
    """The bytes of an Ogg file's audio pages: those of its header packets (Opus and Vorbis
    headers, tags, cover pictures), whose granule position is 0, left out."""
    return sum(size for header, size in _ogg_pages(path) if struct.unpack("<q", header[6:14])[0] not in (0, -1))


def ogg_links(path: str | Path) -> int:
    """How many Ogg streams follow one another in the file (a chained Ogg: recordings of a stream,
    files joined with ``cat``); 1 for an ordinary file.  Streams multiplexed side by side (their
    first pages together at the start) count once.  Reads only the pages' headers."""
    links, in_first_pages = 0, False
    for header, _ in _ogg_pages(path):
        begins = bool(header[5] & 0x02)  # this page begins a stream
        if begins and not in_first_pages:
            links += 1
        in_first_pages = begins
    return max(links, 1)


# MPEG audio frame headers: bitrates (kbit/s) by (MPEG-1?, layer) and index, sample rates by version.
_MPEG_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_BITRATES[(False, 3)] = _MPEG_BITRATES[(False, 2)]
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits


def mpeg_samples(path: str | Path) -> int:
    """The samples per channel that the MPEG audio frames of an MP3 file hold, counted frame by
    frame through the whole file (tags and junk between frames skipped).  A decoder stops where
    the first frame's Xing header says the stream ends, so MP3s joined with ``cat`` decode to the
    first one alone; this count says how much more there is."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return 0
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _count_mpeg_samples(data)


def _count_mpeg_samples(data) -> int:
    total, pos, n = 0, 0, len(data)
    following = None  # the frame at pos, where the step before parsed it already
    while pos + 4 <= n:
        if following is None and (tag := _id3v2_length(data[pos : pos + 10])):  # an ID3v2 tag (MP3s joined together have several)
            pos += tag
            continue
        frame = following or _mpeg_frame(data, pos)
        if frame is None:
            next_sync = data.find(b"\xff", pos + 1)  # not a frame: look for the next one
            pos = n if next_sync < 0 else next_sync
            continue
        samples, length = frame
        following = _mpeg_frame(data, pos + length)
        if following is not None:  # frames come back to back; a lone "header" in a tag does not
            total += samples
        pos += length
    return total


def _mpeg_frame(data, pos: int) -> tuple[int, int] | None:
    """The samples and the length in bytes of the MPEG audio frame whose header is at ``pos``, or
    None where no valid header is."""
    if pos + 4 > len(data) or data[pos] != 0xFF:
        return None
    b1, b2 = data[pos + 1], data[pos + 2]
    version, layer_bits = (b1 >> 3) & 3, (b1 >> 1) & 3
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if b1 & 0xE0 != 0xE0 or version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1, layer = version == 3, 4 - layer_bits
    bitrate = _MPEG_BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    rate = _MPEG_RATES[version][rate_index]
    padding = (b2 >> 1) & 1
    if layer == 1:
        return 384, (12 * bitrate // rate + padding) * 4
    samples = 1152 if mpeg1 or layer == 2 else 576
    return samples, samples // 8 * bitrate // rate + padding
