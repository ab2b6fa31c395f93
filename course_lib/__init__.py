"""course_lib: models, data, training and analyses for "How Do Vision Transformers Work?".

The library behind the course's chapters (Park & Kim, ICLR 2022). Every analysis works on any
``torch.nn.Module`` and on any device; see ``course_lib.models``, ``course_lib.data``,
``course_lib.train`` and ``course_lib.analysis``.
"""

__version__ = "0.1.0"
