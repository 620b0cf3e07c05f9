"""The robust pipeline: any photo, scan or drawing of a digit → the 28×28 views a model sees.

The steps, in the order a picture meets them:

- `views`: the pipeline itself (`preprocess_robust`): which views to make, and the vote among
  the model's answers on them (`choose_view`);
- `centring`: one view: the ink found, cropped, thickened if thin, scaled and centred by mass
  (`robust_view`), or a picture already in MNIST's format taken as it is (`as_mnist`);
- `find_ink`: the ink-bright map: polarity, lighting taken off, threshold, specks and edges
  dropped, and the tests that tell ink from nothing (`ink_map`, `why_no_ink`);
- `lighting`: the paper's slowly varying level (`estimate_paper`, `paper_plane`);
- `border_lines`: edges and shade running into the frame, which are not strokes.
"""
