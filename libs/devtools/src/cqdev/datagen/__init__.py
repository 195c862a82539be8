"""Synthetic data for development and benchmarks (dev tooling, not part of any service).

* :mod:`cqdev.datagen.identifiers` — valid VINs and ID numbers (check digits).
* :mod:`cqdev.datagen.synthetic` — a Chongqing-like data set streamed in constant memory;
  ids come from an HMAC with a random per-data-set key, never from personal fields.
* :mod:`cqdev.datagen.registry_copy`, :mod:`~cqdev.datagen.adjudication_copy`,
  :mod:`~cqdev.datagen.query_copy`, :mod:`~cqdev.datagen.follow_copy` — per-service bulk
  loaders (PostgreSQL COPY) that write a snapshot into each service's own tables,
  publishing no events; their shared frame is :mod:`~cqdev.datagen.bulkcopy`.
* :mod:`cqdev.datagen.generate` — ``python -m cqdev.datagen`` (behind ``make generate``).
"""
