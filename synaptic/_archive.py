"""Reading synaptic's files defensively: an npz (zip) archive whose directory, entry headers
and JSON document are checked before anything is decompressed or allocated (used by persist.py).

A file is untrusted input.  Whatever it declares, loading a file of S bytes must not allocate
much more than a small multiple of S nor take long, and every problem must be a
:class:`FileFormatError`.  So, in this order:

1. the zip's end record (read directly) must announce at most :data:`MAX_ENTRIES` entries and
   a small central directory, before :mod:`zipfile` parses it;
2. the directory: unique ``<name>.npy`` entries, stored or deflated, unencrypted, whose
   declared (uncompressed) sizes add up to at most :data:`MAX_INFLATION` times the file's
   size (synaptic writes arrays uncompressed: a bigger ratio is a zip bomb), the document at
   most :data:`MAX_META_BYTES`; the caller then names the entries it expects
   (:meth:`Archive.expect`) before any is decompressed;
3. each entry's ``.npy`` header (a few hundred bytes, read first): a plain numeric dtype and
   a shape whose size is exactly the entry's declared size; the caller compares the shapes
   with what the document declares (:meth:`Archive.check`) before reading any array;
4. the JSON document: at most :data:`MAX_JSON_CONTAINERS` brackets, counted on the raw bytes
   before parsing (a flood of ``[]`` takes 20 times its size in memory), and at most
   :data:`MAX_JSON_DEPTH` levels of lists and objects.
"""
import json
import math
import os
import struct
import zipfile

import numpy as np

MAX_ENTRIES = 1024                # zip entries in one file (a net: 2 per layer and state)
MAX_DIRECTORY_BYTES = MAX_ENTRIES * 512
MAX_META_BYTES = 4 << 20          # the JSON document: ~40,000 epochs of stats
MAX_INFLATION = 8                 # declared uncompressed bytes per byte of file
MAX_JSON_DEPTH = 64
MAX_JSON_CONTAINERS = 500_000     # a legit document spends >= 8 bytes on each
NUMERIC_KINDS = "biuf"

_END = struct.Struct("<4s4H2LH")          # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator
_END64 = struct.Struct("<4sQ2H2L4Q")      # zip64 end of central directory record


class FileFormatError(ValueError):
    """A file that is not a valid synaptic file of the expected kind (a ValueError).

    Parameters
    ----------
    path : path-like
        The file.
    problem : str
        What is wrong with it; the message is ``"<path>: <problem>"``.

    Examples
    --------
    >>> import synaptic as syn
    >>> str(syn.FileFormatError("data/neuralnet.x", "truncated"))
    'data/neuralnet.x: truncated'
    """

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


def loads_json(data, path, object_hook=None):
    """The JSON document ``data`` (bytes), its size and nesting bounded."""
    brackets = data.count(b"[") + data.count(b"{")  # an upper bound of its lists and objects
    if brackets > MAX_JSON_CONTAINERS:
        raise FileFormatError(path, f"the metadata holds {brackets} brackets, more than the "
                                    f"{MAX_JSON_CONTAINERS} lists and objects allowed")
    try:
        doc = json.loads(data.decode("utf-8"), object_hook=object_hook)
    except RecursionError:
        raise FileFormatError(path, f"the metadata nests more than {MAX_JSON_DEPTH} levels "
                                    "deep") from None
    except (UnicodeDecodeError, ValueError, TypeError) as err:
        # TypeError: an unhashable key; ValueError also covers an int of > 4300 digits
        raise FileFormatError(path, f"the metadata is not valid JSON ({err})") from None
    depth = _depth(doc)
    if depth > MAX_JSON_DEPTH:
        raise FileFormatError(path, f"the metadata nests {depth} levels deep, more than the "
                                    f"{MAX_JSON_DEPTH} allowed")
    return doc


def _depth(doc):
    """The nesting depth of the lists and dicts of ``doc`` (without recursion)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth)
            items = value.values() if isinstance(value, dict) else value
            stack.extend((v, depth + 1) for v in items if isinstance(v, (list, dict)))
    return deepest


def _directory_size(path, f, size):
    """(entries, central directory bytes) announced by the end record(s) of the zip ``f``."""
    f.seek(max(0, size - _END.size - 65535))  # the end record, then a comment of < 64 KB
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        raise FileFormatError(path, "damaged or truncated archive (no zip end record)")
    fields = _END.unpack_from(tail, at)
    entries, directory = fields[4], fields[5]
    start = size - len(tail) + at
    if start >= _END64_LOCATOR.size:  # zip64: the real counts are in another record
        f.seek(start - _END64_LOCATOR.size)
        locator = f.read(_END64_LOCATOR.size)
        if locator[:4] == b"PK\x06\x07":
            offset = _END64_LOCATOR.unpack(locator)[2]
            f.seek(min(offset, size))
            record = f.read(_END64.size)
            if len(record) == _END64.size and record[:4] == b"PK\x06\x06":
                fields = _END64.unpack(record)
                entries, directory = max(entries, fields[7]), max(directory, fields[8])
    return entries, directory


class Archive:
    """An npz file opened for checked reading (a context manager).

    ``entries`` maps each entry's name (without ``.npy``) to its ZipInfo.  The directory is
    checked on opening; :meth:`document` reads the JSON document, :meth:`expect` checks the
    names, :meth:`check` an entry's header, :meth:`read` its array.
    """

    def __init__(self, path, document_entry):
        self.path = path
        self._document_entry = document_entry
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file")
        self.size = os.path.getsize(path)
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise FileFormatError(path, "not a synaptic file (not an npz/zip archive)")
            entries, directory = _directory_size(path, f, self.size)
        if entries > MAX_ENTRIES or directory > MAX_DIRECTORY_BYTES:
            raise FileFormatError(path, f"the archive declares {entries} entries in a "
                                        f"{directory}-byte directory; at most {MAX_ENTRIES} "
                                        "entries are allowed")
        self.zip = self._guard(zipfile.ZipFile, path)
        try:
            self.entries = self._check_directory(self.zip.infolist())
        except BaseException:
            self.close()
            raise
        self._headers = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.zip.close()

    def _guard(self, fn, *args):
        """``fn(*args)``, any failure of the zip or npy layers a FileFormatError."""
        try:
            return fn(*args)
        except FileFormatError:
            raise
        except Exception as err:  # noqa: BLE001 - BadZipFile, zlib.error, EOFError, ValueError...
            # ValueError also covers an object (pickled) array refused by allow_pickle=False
            raise FileFormatError(self.path, f"damaged or truncated archive "
                                             f"({type(err).__name__}: {err})") from None

    def _check_directory(self, infos):
        entries = {}
        for info in infos:
            name = info.filename
            if not name.endswith(".npy"):
                raise FileFormatError(self.path, f"entry {name!r} is not an .npy array")
            if name[:-4] in entries:
                raise FileFormatError(self.path, f"entry {name!r} appears twice")
            if info.flag_bits & 0x1:
                raise FileFormatError(self.path, f"entry {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise FileFormatError(self.path, f"entry {name!r} uses compression method "
                                                 f"{info.compress_type} (stored or deflated only)")
            entries[name[:-4]] = info
        declared = sum(info.file_size for info in infos)
        if declared > MAX_INFLATION * self.size:
            raise FileFormatError(self.path, f"the entries declare {declared} bytes "
                                             f"uncompressed, more than {MAX_INFLATION} times the "
                                             f"file's {self.size} bytes")
        meta = entries.get(self._document_entry)
        if meta is not None and meta.file_size > MAX_META_BYTES + 256:  # + the .npy header
            raise FileFormatError(self.path, f"the metadata declares {meta.file_size} bytes, "
                                             f"more than the {MAX_META_BYTES} allowed")
        return entries

    def document(self, object_hook=None):
        """The JSON document stored in the document entry (a uint8 array of UTF-8 bytes)."""
        name = self._document_entry
        if name not in self.entries:
            raise FileFormatError(self.path, f"no {name} entry (a uint8 JSON document)")
        shape, dtype = self.check(name)
        if dtype != np.uint8 or len(shape) != 1:
            raise FileFormatError(self.path, f"no {name} entry (a uint8 JSON document)")
        return loads_json(self.read(name).tobytes(), self.path, object_hook)

    def expect(self, names):
        """Check that the entries are exactly the document entry and ``names``."""
        wanted = set(names) | {self._document_entry}
        missing = sorted(wanted - set(self.entries))
        if missing:
            raise FileFormatError(self.path, f"missing array entries {missing}")
        extra = sorted(set(self.entries) - wanted)
        if extra:
            raise FileFormatError(self.path, f"unexpected array entries {extra}")

    def check(self, name, shape=None, ndim=None, what=None):
        """(shape, dtype) from the ``.npy`` header of entry ``name``: a numeric dtype, a size
        that is the entry's declared size, and ``shape`` / ``ndim`` when given (``what``
        names the entry in the error)."""
        if name not in self._headers:
            self._headers[name] = self._guard(self._header, name)
        found, dtype = self._headers[name]
        if (shape is not None and found != tuple(shape)) or (ndim is not None and len(found) != ndim):
            expected = tuple(shape) if shape is not None else f"{ndim} dimensions"
            raise FileFormatError(self.path, f"{what or f'entry {name!r}'} of shape {found}, "
                                             f"expected {expected}")
        return found, dtype

    def _header(self, name):
        info = self.entries[name]
        with self.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise FileFormatError(self.path, f"entry {name!r}: .npy format {version} "
                                                 "(1.0 or 2.0 only)")
            offset = f.tell()
        if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
            raise FileFormatError(self.path, f"entry {name!r} is not numeric (dtype {dtype}; "
                                             "pickled objects are never loaded)")
        if any(n < 0 for n in shape):
            raise FileFormatError(self.path, f"entry {name!r} has a negative shape {shape}")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise FileFormatError(self.path, f"entry {name!r} declares shape {shape} "
                                             f"({nbytes} bytes of {dtype}) but holds "
                                             f"{info.file_size - offset} bytes")
        return tuple(shape), dtype

    def read(self, name):
        """The array of entry ``name`` (its header checked first; the CRC checked at the end)."""
        self.check(name)
        return self._guard(self._read, name)

    def _read(self, name):
        with self.zip.open(self.entries[name]) as f:
            array = np.lib.format.read_array(f, allow_pickle=False)
            if f.read(1):
                raise ValueError("data after the array")
        return array
