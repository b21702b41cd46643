"""Raw reading history: an fsync'd write-ahead log, compacted to hourly Parquet, read with DuckDB."""
