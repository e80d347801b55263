"""`python -m bot` is the same as the `imageroute` command."""

from bot.cli import main

if __name__ == "__main__":  # not when a worker process imports the main module
    main()
