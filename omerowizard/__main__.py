from omerowizard.cli import main

raise SystemExit(main())
