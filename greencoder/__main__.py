"""`python -m greencoder` runs the same CLI as the `greencoder` command."""

from greencoder.cli import main

raise SystemExit(main())
