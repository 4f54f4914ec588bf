from c2f.cli import main

raise SystemExit(main())
