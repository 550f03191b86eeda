"""WebDataset shards, the Parquet index and the schemas they are checked against."""
