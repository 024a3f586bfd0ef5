import sys

from lobterm.cli import main

sys.exit(main())
