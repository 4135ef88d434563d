"""``python -m monitor`` is ``banana-monitor``."""

from monitor.cli import main

if __name__ == "__main__":
    main()
