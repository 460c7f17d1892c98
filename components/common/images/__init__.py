"""Image pixels: decoding and resizing, batches, the pixel limit, views, near duplicates."""
