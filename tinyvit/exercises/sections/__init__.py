"""The exercises by topic, one module per part of the paper, in the order of the lessons.

    patches       Sec. 3.1, Eq. 1          1 patchify, 2 embed
    attention     Appendix A, Eq. 5-8      3 softmax, 4 its VJP, 5 attention weights, 6 MSA
    norms         Sec. 3.1                 7 LayerNorm, 8 its VJP, 9 GELU, 10 its derivative
    encoder       Eq. 2-4                  11 the pre-LN block, 12 the whole forward
    loss          Sec. 4.1, Appendix B.1   13 smoothed cross-entropy, 14 its gradient
    optimiser     Appendix B.1             15 AdamW, 16 warmup + cosine
    convolution   Sec. 3.1 (inductive bias) 17 im2col, the CNN baseline's convolution
    analysis      Sec. 3.2, 4.1, Fig. 6    18 attention rollout, 19 position-embedding
                                           interpolation, 20 the few-shot linear probe,
                  (Raghu et al. 2021)      22 linear CKA (lesson 11)
    capstone      Sec. 4.1                 21 the training loop, with the student's functions

Linear CKA came after the capstone and took the next number: a student's files are named by
their numbers (ex21_train.py), so no exercise is renumbered.
"""
