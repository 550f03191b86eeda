"""Media access: probing, decoding and frame-exact clip encoding via ffmpeg argument lists."""
