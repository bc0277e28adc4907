"""Localizers: models trained on the annotations themselves, the upper reference for saliency maps.

Two localizers, both taking ``[B, 3, S, S]`` input in [-1, 1] (`salaudit.models.preprocess`) and giving
a float map ``[S, S]`` in [0, 1] per image:

* ``unet``: a compact U-Net (`UNet`) trained on the masks (BCE + soft Dice); the map is the
  sigmoid probability. Epoch selection: mean soft Dice over the validation images that have a
  mask (higher is better). Default for mask datasets (``siim``).
* ``retinanet``: torchvision's RetinaNet on a ResNet-FPN backbone built from scratch (no
  pretrained weights, trainable BatchNorm), one foreground class, trained on the boxes of
  ``boxes.csv``. The map paints each detection's score over its box (`paint_boxes`). Epoch
  selection: mean AUPRC of the painted maps against the masks over the validation images that
  have a mask. Default for box datasets (``rsna``).

Every image of the training folds is used, negatives included (empty mask, zero boxes).
Training goes through `salaudit.models.training.fit` (the seed stream of the localizer and fold, a state file,
early stopping), so a rerun
after an interruption resumes and, on CPU, ends with bit-identical weights.

Box pixel convention (``boxes.csv`` and `paint_boxes`): pixel ``(r, c)`` covers the unit square
``[c, c + 1) x [r, r + 1)``; a box ``(x0, y0, x1, y1)`` in these continuous coordinates covers
the pixels whose centre lies inside it, half-open: ``x0 <= c + 0.5 < x1`` and
``y0 <= r + 0.5 < y1``. For the integer boxes of ``boxes.csv`` that is exactly
``x0 <= c < x1``, ``y0 <= r < y1``; RetinaNet is trained on, and predicts, the same coordinates.

Modules: `networks` (the networks, their registry and settings), `training` (one fold's
training, its maps of the evaluation images) and `io` (boxes on disk and through augmentation);
every model.pt is written in the format of `salaudit.models.checkpoints`.
"""
