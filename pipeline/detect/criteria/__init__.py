"""One module per physical test of a sensel against its same-colour neighbours.

Each criterion is a pair of functions of a band of one plane (``bands.PlaneView``, with the
halo rows it needs): ``measure`` (pass 1) makes its map's numbers before their local scale and
measures the blocks of that scale; the plane's global parameters are then joined from every
band (``BlockScale`` from the blocks, the counts' null from their histograms); ``score``
(pass 2) turns the map into a robust z with them and names the sensels past the configured
threshold. The bands of a plane can run anywhere, in any order: only small measures travel.

- ``level``: hot and dead, from the residual's mean (its t statistic, rings removed);
- ``variance``: stuck, from the value's variance;
- ``flicker``: noisy, from the residual's variance;
- ``counts``: warm and flickering sensels in photos, from the range counts.
"""
