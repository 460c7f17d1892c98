"""Code shared by the steps: image decoding, record formats, storage, the joined model."""
