"""tf.train.Example records and TFRecord files, written without importing TensorFlow.

Steps that only write records (ingest) would otherwise pay TensorFlow's import, several seconds
per step process, for two small jobs: the Example's protobuf encoding and the TFRecord framing.
Both formats are fixed and small, so they are encoded here by hand; readers keep using
TensorFlow (`tf.io.parse_single_example`, `tf.data.TFRecordDataset`), and tests check that
what is written here reads back there exactly. Float lists are encoded straight from numpy,
which also spares the per-value Python work of `tf.train.FloatList(value=array.tolist())`.

Wire format (tensorflow/core/example/{example,feature}.proto):
    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }
    Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }   FloatList / Int64List { repeated ... value = 1 [packed]; }
TFRecord: uint64 length, uint32 masked CRC-32C of the length, data, uint32 masked CRC-32C of the data.
"""

import struct
from typing import Mapping, Union

import google_crc32c  # installed with google-cloud-storage
import numpy as np

FeatureValue = Union[bytes, int, np.ndarray]

_LENGTH_DELIMITED = 2
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s are ten-byte two's-complement varints
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _feature(value: FeatureValue) -> bytes:
    if isinstance(value, bytes):
        return _field(_BYTES_LIST, _field(1, value))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return _field(_INT64_LIST, _field(1, _varint(int(value))))
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return _field(_FLOAT_LIST, _field(1, np.ascontiguousarray(value, dtype="<f4").ravel().tobytes()))
    raise TypeError(f"a feature is bytes, an int or a float numpy array, not {type(value).__name__}")


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """A serialized tf.train.Example with one value per bytes or int feature, a float list per array."""
    entries = b"".join(_field(1, _field(1, name.encode()) + _field(2, _feature(value)))
                       for name, value in features.items())
    return _field(1, entries)


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


class TFRecordFileWriter:
    """Writes records to a local TFRecord file, as tf.io.TFRecordWriter does (no compression)."""

    def __init__(self, path: str):
        self._file = open(path, "wb")

    def write(self, record: bytes) -> None:
        """Appends one record with its length and the masked CRC32C checksums TFRecord readers check."""
        length = struct.pack("<Q", len(record))
        self._file.write(length + _masked_crc(length) + record + _masked_crc(record))

    def close(self) -> None:
        """Closes the file."""
        self._file.close()

    def __enter__(self) -> "TFRecordFileWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
