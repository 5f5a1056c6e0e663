"""Matplotlib figures for the course, one module per topic (import the module you need).

- ``cnnlab.viz.history``: tuning curves, the timeline, FC-vs-conv shift responses (notebook 01)
- ``cnnlab.viz.filters``: kernels, images and feature maps side by side (notebook 02)
- ``cnnlab.viz.padding``: sliding windows, border usage heat maps, receptive fields (notebook 03)
- ``cnnlab.viz.volumes``: channels, filters and output volumes (notebook 04)
"""
