from drive_jepa.cli import main

raise SystemExit(main())
