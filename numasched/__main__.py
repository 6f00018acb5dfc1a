"""``python -m numasched``: the command line of ``numasched.cli``."""
from .cli import main

if __name__ == "__main__":
    main()
