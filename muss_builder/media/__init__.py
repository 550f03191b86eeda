"""Media access: probing, decoding and frame-exact clip encoding, all through ffmpeg argument lists."""
