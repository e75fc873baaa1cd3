"""Sentinel-2: band table and readers, the procedural scene, scene preparation (Wald protocol)."""
