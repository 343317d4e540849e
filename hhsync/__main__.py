from hhsync.cli import main

main()
