"""JWST NIRSpec + NIRCam: readers, the procedural scene, scene preparation."""
