"""The Dask engine: the only place that knows dask. It plans segments, partitions and batches
(``plan``), builds the graph of read chains and the tree reduction (``graph``), runs it on a
cluster and merges the segments in order (``run``, ``total``), and opens the cluster
(``cluster``). It knows no file format: readers are passed in.
"""


class ClusterError(RuntimeError):
    """The cluster cannot be reached or started; the message says which and why."""
