"""Shot-boundary detection benchmark: ground truth (``truth``), one-to-one matching
(``matching``), counts (``tally``), TRECVID-style scores (``scoring``), the table (``report``)."""
