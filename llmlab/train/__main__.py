"""``python -m llmlab.train spec.json`` (also under ``accelerate launch``)."""

import sys

from llmlab.train.cli import main

sys.exit(main())
