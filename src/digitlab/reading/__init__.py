"""Reading a picture: an image of any kind → the 28×28 views a model sees.

`images` decodes safely and converts to grey; `pipelines` names the preprocessing pipelines
(`robust`, in the `robust` sub-package; `plain`; `naive`; `product`), each returning a
`canvas.Prepared`; `measures` holds what they all measure (ink box, histograms, Otsu, resizing);
`segment` splits a written number into digits. No model here: that is `digitlab.predicting`.
"""
