"""The figures: what a trained ViT has learned, and the pictures and charts that show it.

    analysis.py   the paper's analyses as NumPy functions: attention rollout (Fig. 6), mean
                  attention distance (Fig. 7 right), position-embedding similarity (Fig. 7
                  centre), PCA of the embedding filters (Fig. 7 left), position-embedding
                  interpolation / `resize_vit` (Sec. 3.2), linear probes and few-shot (Sec. 4.1)
    pictures.py   pictures of images and of those figures: image and patch grids, labelled
                  grids (titles, row / column labels, captions, colour bars), matrix heatmaps,
                  attention overlays and masks on a shared scale, filter and similarity grids,
                  the attention distance chart, the masked-patch-prediction views
    charts.py     the small Pillow chart engine under them (colours, text, ticks, axes,
                  legends, line and scatter charts); it knows nothing of ViTs

Import the module you need: `from tinyvit.figures import analysis, charts, pictures`.
"""
