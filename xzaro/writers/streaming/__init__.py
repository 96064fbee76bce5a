"""The streaming device (Acquire's storage interface): camera frames appended to OME-Zarr.

Its parts: :mod:`~xzaro.writers.streaming.properties` (what to stream, checked),
:mod:`~xzaro.writers.streaming.geometry` (each level's array and the OME-NGFF metadata),
:mod:`~xzaro.writers.streaming.rows` (row buffers and their background writing),
:mod:`~xzaro.writers.streaming.objects` (how a row's objects are stored),
:mod:`~xzaro.writers.streaming.documents` and :mod:`~xzaro.writers.streaming.publish` (the
metadata documents, and when they follow the stored rows) and
:mod:`~xzaro.writers.streaming.device` (``ZarrV2``/``ZarrV3``). Users import it as
:mod:`xzaro.streaming`.

acquire-zarr 0.10's API over the same device: :mod:`~xzaro.writers.streaming.settings`
(its settings and enumerations), :mod:`~xzaro.writers.streaming.hcs` (plates and wells) and
:mod:`~xzaro.writers.streaming.stream` (``StreamSettings``, ``ZarrStream``: several arrays in
one store). Users import it as :mod:`xzaro.acquire`.
"""
