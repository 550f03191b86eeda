"""Shot boundary detection: detectors behind one small interface, fed by one decode pass."""
