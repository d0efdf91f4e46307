"""The file names melrestore reads and writes as audio, and the formats (libsndfile's, read from a
file's contents) each name stands for: one table for the file search, the warning on a file whose
contents are not what its name says, and the format `repair -o NAME` writes; and the names of
audio it does not read, which a folder search reports instead of passing over in silence.

Light to import (no numpy or soundfile): the command line reads it before anything heavy loads.
"""

FORMATS_BY_EXTENSION = {".wav": ("WAV", "WAVEX", "RF64"), ".w64": ("W64",), ".flac": ("FLAC",), ".aiff": ("AIFF",),
                        ".aif": ("AIFF",), ".aifc": ("AIFF",), ".ogg": ("OGG",), ".oga": ("OGG",), ".opus": ("OGG",), ".mp3": ("MP3",)}
AUDIO_EXTENSIONS = tuple(FORMATS_BY_EXTENSION)
# What `repair -o NAME` writes: the name's first format.  Not .opus: libsndfile's Ogg is Vorbis unless told.
OUTPUT_FORMATS = {ext: formats[0] for ext, formats in FORMATS_BY_EXTENSION.items() if ext != ".opus"}
# Audio that libsndfile cannot read (AAC, ALAC, WMA, ...) or that melrestore does not write back
# with its metadata (CAF, AU): a folder's files of these are reported as skipped.
UNREAD_AUDIO_EXTENSIONS = (".m4a", ".m4b", ".mp4", ".aac", ".alac", ".wma", ".ape", ".wv", ".mka", ".webm", ".dsf",
                           ".dff", ".tta", ".mpc", ".ac3", ".mp2", ".amr", ".spx", ".caf", ".au", ".snd")
