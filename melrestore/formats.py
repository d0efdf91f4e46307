"""The file names melrestore reads and writes as audio, and the formats (libsndfile's, read from a
file's contents) each name stands for: one table for the file search, the warning on a file whose
contents are not what its name says, and the format `repair -o NAME` writes.

Light to import (no numpy or soundfile): the command line reads it before anything heavy loads.
"""

FORMATS_BY_EXTENSION = {".wav": ("WAV", "WAVEX", "RF64"), ".w64": ("W64",), ".flac": ("FLAC",), ".aiff": ("AIFF",),
                        ".aif": ("AIFF",), ".ogg": ("OGG",), ".oga": ("OGG",), ".opus": ("OGG",), ".mp3": ("MP3",)}
AUDIO_EXTENSIONS = tuple(FORMATS_BY_EXTENSION)
# What `repair -o NAME` writes: the name's first format.  Not .opus: libsndfile's Ogg is Vorbis unless told.
OUTPUT_FORMATS = {ext: formats[0] for ext, formats in FORMATS_BY_EXTENSION.items() if ext != ".opus"}
