"""`python -m ingestion`: see ingestion/run.py."""

import sys

from ingestion.run import main

sys.exit(main())
