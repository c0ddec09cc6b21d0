"""The figures: what a trained ViT has learned, and the pictures and charts that show it.

    analysis.py   the paper's analyses as NumPy functions: attention rollout (Fig. 6), mean
                  attention distance (Fig. 7 right), position-embedding similarity (Fig. 7
                  centre), PCA of the embedding filters (Fig. 7 left), position-embedding
                  interpolation / `resize_vit` (Sec. 3.2), linear probes and few-shot (Sec. 4.1);
                  for any ViT: class token, GAP or sequence pooling (the readout weights),
                  learned or sin-cos positions, shifted patch tokens, locality self-attention
    pictures.py   pictures of images and of those figures: image and patch grids, labelled
                  grids (titles, row / column labels, captions, colour bars), matrix heatmaps,
                  attention overlays and masks on a shared scale, filter and similarity grids,
                  the attention distance chart, the masked-patch-prediction views
    similarity.py linear CKA (Kornblith et al. 2019) and its minibatch form (Nguyen et al.
                  2021) between every layer of two networks, and those layers'
                  representations (ViT, CNN, hybrid): Raghu et al. 2021's heatmaps
    occlusion.py  patches dropped (as pixels, or as tokens removed from a ViT's sequence) and
                  shuffled (Naseer et al. 2021), and accuracy under them
    robustness.py corruption error and mCE (Hendrycks & Dietterich 2019), shape bias
                  (Geirhos et al. 2019)
    charts.py     the small Pillow chart engine under them (colours, text, ticks, axes,
                  legends, line and scatter charts); it knows nothing of ViTs

Import the module you need: `from tinyvit.figures import analysis, charts, pictures`.
"""
