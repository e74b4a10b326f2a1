import sys

from reverse_etl.cli import main

sys.exit(main())
