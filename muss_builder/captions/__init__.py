"""Progressive captions: measured shot facts -> shot captions -> a global caption per sample."""
