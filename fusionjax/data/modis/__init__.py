"""MODIS LST and NDVI composites: readers, the procedural archive, the climatology, the TFDS
builder."""
