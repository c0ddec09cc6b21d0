"""Running the model: training, evaluation, checkpoints, the command line, progress, files.

Nothing in the model (`tinyvit.vit`, `layers`, `ops`, `cnn`, `optim`) imports from here.
"""
