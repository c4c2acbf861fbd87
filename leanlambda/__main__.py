import sys

from leanlambda.cli import main

sys.exit(main())
