"""`python -m bot` is the same as the `imageroute` command."""

from bot.cli import main

main()
