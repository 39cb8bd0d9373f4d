"""The ``dask`` engine: ingest and features split into episode buckets on a Dask cluster.

It runs the *same* functions as the pandas engine (``pipeline.ingest.accept.process_table``,
``pipeline.features.build.episode_features``) on each bucket, then does the few cohort-wide
steps once (extract date, report totals, disengagement index). See docs/scaling.md.
"""
