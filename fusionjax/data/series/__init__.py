"""Sentinel-2 image series: readers, the procedural phenology, the TFDS builder of state windows."""
