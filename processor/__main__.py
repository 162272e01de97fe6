"""`python -m processor`: see processor/job.py (also the spark-submit entry point)."""

import sys

from processor.job import main

sys.exit(main())
