"""Image pixels: decoding and resizing, the pixel limit, views, near duplicates."""
