"""Reading and writing audio files with soundfile, keeping the file's own format.

PCM files are read as int32 (libsndfile shifts 8/16/24-bit samples up
losslessly) so that writing them back reproduces every untouched sample
bit for bit; float files are read in their own precision.

A short file can be read whole (:func:`read`).  The batch opens files as an :class:`AudioFile`
instead, whose ``waveform`` reads only the samples asked for, and writes the repaired file by
copying the input with the repaired spans patched in: memory stays bounded whatever the length.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .atomic import TEMP_SUFFIX, atomic_target
from .container import (G711, SAMPLE_BYTES, can_patch, copy_tags, encoder_settings, g711_round, mpeg_samples, ogg_links,
                        patch_samples, pcm_layout)
from .formats import FORMATS_BY_EXTENSION

PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
# A RIFF data size of all ones: no length given, as a recorder writing a stream leaves it (read to the end).
STREAMED_SIZE = 0xFFFFFFFF
SF_ERR_SYSTEM = 2  # libsndfile's error code for a failed system call ("System error.")
# An MP3's frames beyond what decodes are reported from this much on (a Xing header, encoder delay
# and padding make up a few thousand samples).
UNDECODED_MIN_S, UNDECODED_MIN_SHARE = 1.0, 0.05
# Bytes after a WAV's or AIFF's declared samples that are no chunk are reported from this much audio on.
UNEXPLAINED_TAIL_S = 0.01
LOSSY_FORMATS = {"OGG", "MP3"}
REPAIRED_FORMATS = {format for formats in FORMATS_BY_EXTENSION.values() for format in formats}
# Encodings inside a WAV or AIFF that libsndfile re-encodes lossily (decoded, then encoded again, an
# ADPCM block's samples move by up to thousands of 16-bit steps); A-law and u-law are patched in place.
LOSSY_SUBTYPES = {"IMA_ADPCM", "MS_ADPCM", "GSM610", "VOX_ADPCM", "G721_32", "G723_24", "G723_40",
                  "NMS_ADPCM_16", "NMS_ADPCM_24", "NMS_ADPCM_32"}
# libsndfile's seeking in Ogg and MP3 files is not always sample-exact (a read after a seek can differ
# from the same samples decoded in order): they are decoded once, in order, into a temporary file
# that is read from instead.
INEXACT_SEEK_FORMATS = {"OGG", "MP3"}
FLAC_BLOCK_SAMPLES = 4096  # the usual FLAC frame: what a file cut short loses at most, past its last whole frame
# A decoded length may fall short of the header's by an MP3 encoder's padding (a frame or two of
# 1152 samples) without the file being damaged; a longer shortfall is reported as a cut.
DECODED_LENGTH_SLACK = 4 * 1152

# Samples read at a time by the passes over a whole file (detection, search features, writing): a
# stereo block of 32-bit samples is 8 MiB, so a long file is never held whole.  Read when used (tests shrink it).
BLOCK_SAMPLES = 1 << 20
# An open file keeps the stored samples it read last, in pieces of CACHE_PIECE samples up to
# CACHE_BYTES: the passes over a short file (detection, both searches' features, writing) then
# decode it once, and a long one still holds only this much.  Read when used (tests shrink it).
CACHE_PIECE = 1 << 16
CACHE_BYTES = 32 << 20


class AudioError(Exception):
    """The file is not audio we can read or write."""


def _read_in_order(sound: sf.SoundFile, frames: int, dtype: str) -> np.ndarray:
    """Up to ``frames`` samples from where ``sound`` stands, ``[n, channels]``, as
    ``sound.read`` gives them but without the seek soundfile makes after every read (to where the
    read ended): in an MP3 even that seek is not sample-exact in libsndfile 1.2, and the next read
    then begins with up to an MPEG frame of zeros, a false dropout at every block's start."""
    out = np.empty((frames, sound.channels), dtype)
    ctype = sf._ffi_types[dtype]  # "float32" -> "float", as soundfile's own reads name it
    read = getattr(sf._snd, f"sf_readf_{ctype}")
    done = read(sound._file, sf._ffi.cast(f"{ctype} *", out.ctypes.data), frames)
    if error := sf._snd.sf_error(sound._file):
        raise sf.LibsndfileError(error)
    return out[:done]


def sound_path(path: str | os.PathLike) -> str | bytes:
    """``path`` as soundfile can open it: a name holding bytes that are not in the system's encoding
    (a Latin-1 name on a UTF-8 system) goes as bytes, which soundfile passes on as they are
    (it cannot encode the str Python decodes such a name to)."""
    path = os.fspath(path)
    try:
        os.fsdecode(path).encode(sys.getfilesystemencoding())
        return os.fsdecode(path)
    except UnicodeEncodeError:
        return os.fsencode(path)


def is_lossy(format: str, subtype: str) -> bool:
    """Whether writing this format and subtype again changes samples outside the gaps too."""
    return format in LOSSY_FORMATS or subtype in LOSSY_SUBTYPES


# Float subtypes' significant bits: a PCM sample of as many bits or fewer is stored in them exactly.
FLOAT_BITS = {"FLOAT": 24, "DOUBLE": 53}


def holds_exactly(subtype: str, source_subtype: str) -> bool:
    """Whether every sample stored as ``source_subtype`` is stored as ``subtype`` unchanged: PCM in
    PCM or float of as many bits or more, float in float of as many."""
    if source_subtype in PCM_BITS:
        return {**PCM_BITS, **FLOAT_BITS}.get(subtype, 0) >= PCM_BITS[source_subtype]
    return source_subtype in FLOAT_BITS and FLOAT_BITS.get(subtype, 0) >= FLOAT_BITS[source_subtype]


def stored_dtype(subtype: str) -> str:
    """How samples of this subtype are held: int32 for PCM, the file's own precision for float."""
    return "int32" if subtype in PCM_BITS else ("float64" if subtype == "DOUBLE" else "float32")


def to_float(stored: np.ndarray) -> np.ndarray:
    """Stored samples ``[samples, channels]`` -> ``[channels, samples]`` float32 in [-1, 1], each
    channel contiguous (a mean over the channels is then several times faster)."""
    if stored.dtype == np.int32:  # scaling by a power of two after rounding to float32 rounds alike
        return stored.T.astype(np.float32, order="C") * np.float32(2.0**-31)
    out = stored.T.astype(np.float32, order="C")
    broken = ~np.isfinite(out)
    if broken.any():  # a float file's NaN or infinite samples are no music: read as digital silence (stored as they are)
        out[broken] = 0.0
    return out


def quantise(fill: np.ndarray, subtype: str) -> np.ndarray:
    """A fill ``[channels, n]`` -> stored samples ``[n, channels]`` at the file's bit depth: PCM
    clipped to its range; A-law and u-law clipped and rounded to their codes (read as float);
    float as it is (a float file may hold music beyond ±1, and its fill must meet it)."""
    fill = np.ascontiguousarray(np.asarray(fill, dtype=np.float64).T)
    dtype = stored_dtype(subtype)
    if dtype == "int32":
        step = 2.0 ** (32 - PCM_BITS[subtype])
        q = np.round(np.clip(fill, -1.0, 1.0) * 2.0**31 / step) * step
        return np.clip(q, -(2.0**31), 2.0**31 - step).astype(np.int32)
    if subtype in G711:
        return g711_round(fill, subtype)
    return fill.astype(dtype)


class _Described:
    """What a file read whole and one read in pieces both tell (from ``frames``, ``sample_rate``,
    ``format`` and ``subtype``)."""

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    @property
    def is_lossy(self) -> bool:
        return is_lossy(self.format, self.subtype)


@dataclass
class Audio(_Described):
    """Samples as stored (``[samples, channels]``), plus what is needed to write them back."""

    samples: np.ndarray
    sample_rate: int
    format: str
    subtype: str
    endian: str
    warnings: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return self.samples.shape[1]

    @property
    def frames(self) -> int:
        return self.samples.shape[0]

    def as_float(self) -> np.ndarray:
        """``[channels, samples]`` float32 in [-1, 1]."""
        return to_float(self.samples)


class AudioFile(_Described):
    """An audio file open for reading in pieces; close it (or use it in a ``with`` block).

    ``read(start, stop)`` gives the stored samples ``start:stop`` (``[n, channels]``);
    ``waveform`` stands in for the float ``[channels, samples]`` array, read on demand.
    Raises :class:`AudioError` (or the system's OSError) when the file cannot be read.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._spool = None
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()  # CACHE_PIECE index -> stored samples
        try:
            with open(path, "rb") as f:  # the operating system's own reason (permission, missing, ...), not libsndfile's
                if not f.read(1):
                    raise AudioError("cannot read audio: the file is empty (0 bytes)")
            self._sound = sf.SoundFile(sound_path(path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            raise AudioError(f"cannot read audio: {exc}") from None
        sound = self._sound
        self.sample_rate, self.channels, self.frames = sound.samplerate, sound.channels, sound.frames
        self.format, self.subtype, self.endian = sound.format, sound.subtype, sound.endian
        self.dtype = stored_dtype(self.subtype)
        self.warnings: list[str] = []
        if self.format not in REPAIRED_FORMATS:  # its metadata would not be written back
            self.close()
            raise AudioError(f"holds {self.format} audio, a format melrestore does not repair "
                             f"(it repairs {', '.join(sorted(REPAIRED_FORMATS))}): convert it to FLAC or WAV first")
        named = FORMATS_BY_EXTENSION.get(self.path.suffix.lower())
        if named and self.format not in named:
            self.warnings.append(f"named {self.path.suffix}, but holds {self.format} audio (read, and by `batch` written, as such)")
        try:
            self._decode_checked()
        except BaseException:
            self.close()
            raise
        self.undecoded = self._undecoded_rest()
        self.warnings += self._layout_warnings()
        self.waveform = Waveform(self)

    def _decode_checked(self) -> None:
        """Decode into a spool what cannot be read in place (formats that do not seek exactly, a FLAC
        cut short), and warn where fewer samples decode than the header declares."""
        declared = self.frames
        if self.format in INEXACT_SEEK_FORMATS or not self._sound.seekable():  # GSM 6.10 cannot seek
            self._spool_decoded()
        elif self.format == "FLAC" and not self._reads_to_end():
            # Cut short (or damaged): decoded in order as far as it goes, in blocks of a FLAC
            # frame's usual size, since the block the decoder fails in is lost.
            self._spool_decoded(FLAC_BLOCK_SAMPLES, stop_at_error=True)
        if self.frames == 0 and declared > 0:
            raise AudioError("no sample of the file decodes")
        slack = DECODED_LENGTH_SLACK if self.format == "MP3" else 0
        if self.frames < declared - slack:
            self.warnings.append(
                f"truncated or damaged file: decoding stopped at {self.duration:.3f} s of the "
                f"{declared / self.sample_rate:.3f} s its header declares; repaired as far as it goes"
            )

    def _layout_warnings(self) -> list[str]:
        """What the bytes of a PCM file say that libsndfile does not: a header declaring more
        samples than the file holds, or bytes after the samples that are no chunk."""
        layout = pcm_layout(self.path)
        if layout is None:
            return []
        found = []
        if layout.available_bytes < layout.declared_bytes != STREAMED_SIZE:
            found.append(
                f"truncated file: its header declares {layout.declared_bytes} bytes of samples, "
                f"the file holds {layout.available_bytes} ({self.duration:.3f} s were read)"
            )
        frame_bytes = self.channels * SAMPLE_BYTES.get(self.subtype, 0)
        if frame_bytes and layout.unexplained_bytes >= UNEXPLAINED_TAIL_S * self.sample_rate * frame_bytes:
            found.append(
                f"{layout.unexplained_bytes} bytes follow the {self.duration:.3f} s of samples its header declares, "
                f"and they are no chunk: about {layout.unexplained_bytes / frame_bytes / self.sample_rate:.3f} s more "
                "if they are samples (a recording whose header was not rewritten when it stopped?). They were not "
                "checked for gaps and are kept as they are; fix the header (`sox --ignore-length`) to have them read"
            )
        return found

    def _undecoded_rest(self) -> str | None:
        """What the file holds past what libsndfile decodes, in words, or None: the later streams of
        a chained Ogg, or MP3s joined after the first (whose Xing header ends the decoding)."""
        if self.format == "OGG" and (links := ogg_links(self.path)) > 1:
            return (f"a chained Ogg file ({links} streams one after another), of which only the first "
                    f"({self.duration:.3f} s) decodes")
        if self.format == "MP3":
            more = mpeg_samples(self.path) - self.frames
            if more > max(UNDECODED_MIN_S * self.sample_rate, UNDECODED_MIN_SHARE * self.frames):
                return (f"MPEG frames of about {more / self.sample_rate:.1f} s more follow the "
                        f"{self.duration:.3f} s that decode (MP3 files joined together?)")
        return None

    def _reads_to_end(self) -> bool:
        """Whether the last sample the header declares can be read (a FLAC cut short cannot seek
        there, and its decoder is then opened again, to decode from the start)."""
        try:
            self._sound.seek(self.frames - 1)
            if len(self._sound.read(1, dtype=self.dtype)) == 1:
                self._sound.seek(0)
                return True
        except (sf.LibsndfileError, RuntimeError):
            pass
        self._sound.close()
        self._sound = sf.SoundFile(sound_path(self.path))
        return False

    def _spool_decoded(self, block_samples: int | None = None, stop_at_error: bool = False) -> None:
        """Decode the file once, in order, into a temporary file that ``read`` then serves, and count
        the samples that really decode (with ``stop_at_error``, only those before the first error).

        Read block by block until a read comes back empty: soundfile's ``blocks`` trusts the
        header's length, and past the end of a file cut short it hands out its stale buffer."""
        needed_bytes = self.frames * self.channels * np.dtype(self.dtype).itemsize  # as the header declares
        self._spool = tempfile.TemporaryFile(suffix=TEMP_SUFFIX)
        self.frames = 0
        try:
            while len(block := _read_in_order(self._sound, block_samples or BLOCK_SAMPLES, self.dtype)):
                self._spool.write(block.tobytes())
                self.frames += len(block)
        except (sf.LibsndfileError, RuntimeError) as exc:
            if not stop_at_error:
                raise AudioError(f"cannot read audio: {exc}") from None
        except OSError as exc:  # a full disk, most likely: say which, and what to do
            raise AudioError(f"cannot decode the file into the temporary folder {tempfile.gettempdir()} (it needs about "
                             f"{needed_bytes / 1e6:.0f} MB; set TMPDIR to a folder with room): {exc.strerror or exc}") from None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Stored samples ``start:stop`` (``0 <= start <= stop <= frames``), ``[n, channels]``, a new
        array (callers may write to it)."""
        first, last = start // CACHE_PIECE, max(start, stop - 1) // CACHE_PIECE
        pieces = [self._piece(i) for i in range(first, last + 1)]
        offset = start - first * CACHE_PIECE
        return np.concatenate(pieces)[offset : offset + stop - start] if len(pieces) > 1 else pieces[0][offset : offset + stop - start].copy()

    def _piece(self, i: int) -> np.ndarray:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        piece = self._read_stored(i * CACHE_PIECE, min(self.frames, (i + 1) * CACHE_PIECE))
        self._cache[i] = piece
        while len(self._cache) > 1 and sum(p.nbytes for p in self._cache.values()) > CACHE_BYTES:
            self._cache.popitem(last=False)
        return piece

    def _read_stored(self, start: int, stop: int) -> np.ndarray:
        try:
            if self._spool is not None:
                self._spool.seek(start * self.channels * np.dtype(self.dtype).itemsize)
                return np.fromfile(self._spool, self.dtype, (stop - start) * self.channels).reshape(-1, self.channels)
            self._sound.seek(start)
            return self._sound.read(stop - start, dtype=self.dtype, always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            rate = self.sample_rate
            raise AudioError(f"cannot read audio between {start / rate:.3f} and {stop / rate:.3f} s of its "
                             f"{self.duration:.3f} s (damaged there?): {exc}") from None

    def close(self) -> None:
        self._sound.close()
        if self._spool is not None:
            self._spool.close()

    def __enter__(self) -> "AudioFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Waveform:
    """A file's samples as float32 ``[channels, samples]`` in [-1, 1] (what ``Audio.as_float`` gives),
    read on demand: ``waveform[:, a:b]`` or ``waveform[:, i]`` reads just those samples, so code
    written for the array works on a file of any length.  ``patches`` (``(start, stored samples)``
    pairs) are laid over what is read: the repaired file before it is written.
    ``np.asarray(waveform)`` reads it all.  ``on_read(stop)``, when given, is called with the end
    of each read (how far a scan has got)."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, file: AudioFile, patches=(), on_read=None):
        self.file = file
        self.patches = list(patches)
        self.on_read = on_read
        self.shape = (file.channels, file.frames)

    def patched(self, patches) -> "Waveform":
        return Waveform(self.file, self.patches + list(patches))

    def watched(self, on_read) -> "Waveform":
        """The same samples, read with ``on_read(stop)`` called after each read."""
        return Waveform(self.file, self.patches, on_read)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        channels, samples = key if isinstance(key, tuple) and len(key) == 2 else (key, slice(None))
        if isinstance(samples, (int, np.integer)):
            at = range(self.shape[1])[samples]  # numpy's rules for negative and out-of-range indices
            return self[channels, at : at + 1][..., 0]
        if not isinstance(samples, slice) or samples.step not in (None, 1):
            raise TypeError("a waveform read on demand takes a slice or one index along its samples")
        start, stop, _ = samples.indices(self.shape[1])
        return to_float(self.stored(start, max(start, stop)))[channels]

    def stored(self, start: int, stop: int) -> np.ndarray:
        """The stored samples ``start:stop`` (``[n, channels]``, as ``AudioFile.read``), patched."""
        stored = self.file.read(start, stop)
        for at, patch in self.patches:
            lo, hi = max(at, start), min(at + len(patch), stop)
            if lo < hi:
                stored[lo - start : hi - start] = patch[lo - at : hi - at]
        if self.on_read is not None:
            self.on_read(stop)
        return stored

    def __array__(self, dtype=None, copy=None):
        whole = self[:, :]
        return whole if dtype is None else whole.astype(dtype)


def read(path: str | os.PathLike) -> Audio:
    """The whole file in memory (the batch reads in pieces: :class:`AudioFile`)."""
    with AudioFile(path) as file:
        return Audio(file.read(0, file.frames), file.sample_rate, file.format, file.subtype, file.endian, file.warnings)


def write_repaired(audio: AudioFile, path: str | os.PathLike, patches, source_stat: os.stat_result | None = None) -> None:
    """Write ``audio``'s file to ``path`` with ``patches`` (``(start, stored samples [n, channels])``
    pairs, from :func:`quantise`) in place of its samples there; every other sample is kept.

    PCM, float, A-law and u-law WAV/Wave64/AIFF: the patches go into a byte copy of the file, which
    keeps every chunk and tag.  Other formats are rewritten block by block by libsndfile and get the
    file's tags (chunks, metadata blocks) copied over.
    Atomic: a killed run never leaves a half-written file.  The copy, the layout and the tags are
    read from the file by name: with ``source_stat`` (its ``os.stat`` before it was read), nothing
    is written if it is no longer that file (:func:`melrestore.atomic.check_unchanged`).
    """
    layout = pcm_layout(audio.path)
    with atomic_target(path, mode_of=audio.path, source=audio.path, source_stat=source_stat) as tmp:
        if can_patch(audio.subtype, layout):
            shutil.copyfile(audio.path, tmp)
            patch_samples(tmp, layout, audio.subtype, patches)
            _check_patched(tmp, audio.dtype, patches)
        else:
            write_blocks(audio, tmp, patches, encoder=encoder_settings(audio.path, audio.format))
            copy_tags(audio.path, tmp, audio.format)


def write_blocks(audio: AudioFile, path: str | os.PathLike, patches=(), format: str | None = None, subtype: str | None = None,
                 encoder: dict | None = None, text_tags: dict | None = None) -> None:
    """Write ``audio`` to ``path`` a block at a time, with ``patches`` laid over it, in its own format
    (or ``format``/``subtype``); ``encoder``: a lossy encoder's settings (:func:`encoder_settings`);
    ``text_tags``: libsndfile's string tags to write (``{"title": ...}``)."""
    endian = audio.endian if format in (None, audio.format) else "FILE"
    sf._ffi.errno = 0  # so that the errno read below is the failing write's, not an older call's
    try:
        with sf.SoundFile(sound_path(path), "w", audio.sample_rate, audio.channels, subtype or audio.subtype, endian,
                          format or audio.format, **(encoder or {})) as out:
            for key, value in (text_tags or {}).items():
                setattr(out, key, value)
            waveform = Waveform(audio, patches)
            for start in range(0, audio.frames, BLOCK_SAMPLES):
                out.write(waveform.stored(start, min(audio.frames, start + BLOCK_SAMPLES)))
    except sf.LibsndfileError as exc:
        # libsndfile says only "System error." when a write fails: the system's errno says why.
        if exc.code == SF_ERR_SYSTEM and (code := sf._ffi.errno):
            raise OSError(code, os.strerror(code), str(path)) from None
        raise


def _check_patched(path, dtype: str, patches) -> None:
    """Read the patched spans back: a header we misread must fail loudly, never write wrong samples."""
    with sf.SoundFile(sound_path(path)) as f:
        for start, samples in patches:
            f.seek(start)
            back = f.read(len(samples), dtype=dtype, always_2d=True)
            if not np.array_equal(back, samples):
                raise AudioError(f"patching samples {start}..{start + len(samples)} in place did not read back; nothing was written")


def write_atomic(audio: Audio, path: str | os.PathLike) -> None:
    """Write in the file's own format; a killed run never leaves a half-written file."""
    with atomic_target(path) as tmp:
        sf.write(sound_path(tmp), audio.samples, audio.sample_rate, format=audio.format, subtype=audio.subtype, endian=audio.endian)


def write_converted(audio: AudioFile, path: str | os.PathLike, format: str, subtype: str, patches=(),
                    source_stat: os.stat_result | None = None) -> None:
    """``audio``'s decoded samples, ``patches`` laid over them, written to ``path`` as
    ``format``/``subtype`` in one encoding (never through the file's own format first: a lossy file
    would lose twice), a block at a time, atomically.  The tags libsndfile reads as text (title,
    artist, album, ...) are carried over; pictures and other tags are not.  ``source_stat``: as
    :func:`write_repaired`'s."""
    with sf.SoundFile(sound_path(audio.path)) as source:
        text_tags = {key: value for key, value in source.copy_metadata().items() if value}
    with atomic_target(path, source=audio.path, source_stat=source_stat) as tmp:
        write_blocks(audio, tmp, patches, format=format, subtype=subtype, text_tags=text_tags)
